package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/connectd/connectd/internal/gctune"
	"github.com/connectd/connectd/plugins/internal/wire"
)

// ServeSource runs a source plugin until connectd stops it. Call it from main.
func ServeSource[C any](info Info, src Source[C]) {
	log := newLogger(os.Stderr)
	serve(wire.KindSource, &wire.SourcePlugin{Impl: newSourceServer(info, src, log)})
}

// ServeDestination runs a destination plugin until connectd stops it.
func ServeDestination[C any](info Info, dst Destination[C]) {
	log := newLogger(os.Stderr)
	serve(wire.KindDestination, &wire.DestinationPlugin{Impl: newDestinationServer(info, dst, log)})
}

func serve(kind string, p plugin.Plugin) {
	gctune.Set(gctune.Plugin)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{wire.ProtocolVersion: {kind: p}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(wire.MaxMessageBytes), grpc.MaxSendMsgSize(wire.MaxMessageBytes))
			opts = append(opts, wire.ServerOptions()...)
			return grpc.NewServer(opts...)
		},
		// go-plugin's own messages, in the same JSON shape as the plugin's log.
		Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Info}),
	})
}

// call runs author code, turning a panic into an error (and logging its stack) so
// that a bug in one call answers with an error instead of killing the process.
func call(log *slog.Logger, what string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("plugin panicked", "in", what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("%s panicked: %v", what, p)
		}
	}()
	return f()
}

// toStatus gives an author's error the gRPC code the host classifies it by.
func toStatus(what string, err error) error {
	if err == nil {
		return nil
	}
	code := codes.Unknown
	switch {
	case IsPermanent(err):
		code = codes.InvalidArgument
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Errorf(code, "%s: %v", what, err)
}
