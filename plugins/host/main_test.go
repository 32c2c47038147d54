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
	"github.com/connectd/connectd/internal/testenv"
)

// sharedPlugins holds the plugins the tests run, built by the first test that needs them
// (none in -short mode).
var sharedPlugins = &testenv.Shared[string]{Start: buildPlugins}

func pluginDir(t testing.TB) string { t.Helper(); return sharedPlugins.Get(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	if err := sharedPlugins.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func buildPlugins(ctx context.Context) (dir string, stop func() error, err error) {
	dir, err = os.MkdirTemp("", "connectd-plugins-")
	if err != nil {
		return "", nil, fmt.Errorf("build plugins: %w", err)
	}
	stop = func() error { return os.RemoveAll(dir) }
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
		cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", b.ldflags, "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = root()
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = stop()
			return "", nil, fmt.Errorf("build %s: %w\n%s", b.pkg, err, out)
		}
	}
	return dir, stop, nil
}

// root is the module's root directory.
func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
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

func sourceParams(t testing.TB, name string, pc *Config, mode connector.Mode) connector.SourceParams {
	return connector.SourceParams{Name: name, Config: config.Source{Type: "plugin", Config: pc}, Mode: mode,
		Logger: testLogger(t).With("connector", name), Status: connector.NopStatus{}}
}

func destinationParams(t testing.TB, name string, pc *Config) connector.DestinationParams {
	return connector.DestinationParams{Name: name, Config: config.Destination{Type: "plugin", Config: pc},
		Logger: testLogger(t).With("connector", name)}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
