package sdk

import (
	"io"
	"log/slog"
)

// newLogger returns a logger writing JSON lines in the shape go-plugin's host parses
// (@level, @message, @timestamp), so that connectd logs each line at its own level
// under the plugin's name instead of as opaque stderr text.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
			case slog.LevelKey:
				l, _ := a.Value.Any().(slog.Level)
				switch {
				case l < slog.LevelInfo:
					return slog.String("@level", "debug")
				case l < slog.LevelWarn:
					return slog.String("@level", "info")
				case l < slog.LevelError:
					return slog.String("@level", "warn")
				}
				return slog.String("@level", "error")
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	}))
}
