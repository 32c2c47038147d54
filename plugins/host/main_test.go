package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
)

// pluginDir holds the plugins the tests run, built once by TestMain.
var pluginDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "connectd-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	pluginDir = dir
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	builds := []struct{ out, pkg, ldflags string }{
		{"jsonl-source", "./plugins/examples/jsonl-source", ""},
		{"ndjson-destination", "./plugins/examples/ndjson-destination", ""},
		{"gensource", "./plugins/host/testdata/gensource", ""},
		{"discarddest", "./plugins/host/testdata/discarddest", ""},
		{"rawsource", "./plugins/host/testdata/rawsource", ""},
		{"rawsource-v99", "./plugins/host/testdata/rawsource", "-X main.protocolVersion=99"},
		{"rawsource-v1", "./plugins/host/testdata/rawsource", "-X main.protocolVersion=1"},
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-ldflags", b.ldflags, "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter sends log lines to t.Log, so they show only for failing tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func sourceParams(t testing.TB, name string, pc *config.PluginConfig, mode connector.Mode) connector.SourceParams {
	return connector.SourceParams{Name: name, Config: config.Source{Type: "plugin", Plugin: pc}, Mode: mode,
		Logger: testLogger(t).With("connector", name), Status: connector.NopStatus{}}
}

func destinationParams(t testing.TB, name string, pc *config.PluginConfig) connector.DestinationParams {
	return connector.DestinationParams{Name: name, Config: config.Destination{Type: "plugin", Plugin: pc},
		Logger: testLogger(t).With("connector", name)}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
