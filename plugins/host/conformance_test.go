package host

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/conformance"
	"github.com/connectd/connectd/record"
)

// TestExamplePluginsConformance runs the connector suite against both example
// plugins, each through its real plugin process: jsonl-source tailing a file,
// ndjson-destination writing files read back line by line.
func TestExamplePluginsConformance(t *testing.T) {
	plugins := pluginDir(t)
	t.Run("jsonl-source", func(t *testing.T) { conformance.TestSource(t, jsonlDriver{plugins: plugins}) })
	t.Run("ndjson-destination", func(t *testing.T) { conformance.TestDestination(t, ndjsonDriver{plugins: plugins}) })
}

var conformanceSeq atomic.Int64

// jsonlDriver gives each check its own file.
type jsonlDriver struct{ plugins string }

// Sizes gives each phase more rows than two full emits hold: the SDK sends batches of up
// to 8192 records (maxBatchRecords in plugins/sdk).
func (jsonlDriver) Sizes() (snapshot, stream int) { return 2*8192 + 300, 2*8192 + 200 }

func (d jsonlDriver) Setup(_ context.Context, tb testing.TB) (conformance.SourceFixture, error) {
	f := &jsonlFixture{plugins: d.plugins, name: fmt.Sprintf("conformance_%d", conformanceSeq.Add(1)), logger: guardedLogger(tb)}
	f.path = filepath.Join(tb.TempDir(), "rows.jsonl")
	return f, os.WriteFile(f.path, nil, 0o644)
}

type jsonlFixture struct {
	plugins    string
	name, path string
	logger     *slog.Logger
	rows       int
}

// pluginConfig is the one place the driver builds the connector's config.
func (f *jsonlFixture) pluginConfig() *Config {
	return &Config{Name: "jsonl-source", Config: map[string]any{"path": f.path, "poll": "20ms",
		"columns": []any{map[string]any{"name": "id", "type": "int64", "key": true}, map[string]any{"name": "v", "type": "string"}}}}
}

func (f *jsonlFixture) Open(ctx context.Context, mode connector.Mode) (connector.Source, error) {
	return SourceKind{Dir: f.plugins}.Open(ctx, connector.SourceParams{Name: f.name,
		Config: config.Source{Type: "plugin", Config: f.pluginConfig()}, Mode: mode,
		Logger: f.logger.With("connector", f.name), Status: connector.NopStatus{}})
}

// Insert appends n complete lines in one write.
func (f *jsonlFixture) Insert(_ context.Context, n int) error {
	var b strings.Builder
	for i := f.rows + 1; i <= f.rows+n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"v":"row %d"}`+"\n", i, i)
	}
	fh, err := os.OpenFile(f.path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := fh.WriteString(b.String()); err != nil {
		fh.Close()
		return err
	}
	f.rows += n
	return fh.Close()
}

// ndjsonDriver gives each check its own output directory.
type ndjsonDriver struct{ plugins string }

func (d ndjsonDriver) Setup(_ context.Context, tb testing.TB) (conformance.DestinationFixture, error) {
	return &ndjsonFixture{plugins: d.plugins, name: fmt.Sprintf("conformance_%d", conformanceSeq.Add(1)), dir: tb.TempDir(), logger: guardedLogger(tb)}, nil
}

type ndjsonFixture struct {
	plugins   string
	name, dir string
	logger    *slog.Logger
}

// pluginConfig is the one place the driver builds the connector's config.
func (f *ndjsonFixture) pluginConfig() *Config {
	return &Config{Name: "ndjson-destination", Config: map[string]any{"dir": f.dir}}
}

func (f *ndjsonFixture) Open(ctx context.Context) (connector.Destination, error) {
	return DestinationKind{Dir: f.plugins}.Open(ctx, connector.DestinationParams{Name: f.name,
		Config: config.Destination{Type: "plugin", Config: f.pluginConfig()}, Logger: f.logger.With("connector", f.name)})
}

// ReadBack reads the _pos and _op of every line of every finished file.
func (f *ndjsonFixture) ReadBack(context.Context) ([]conformance.Stored, error) {
	var out []conformance.Stored
	err := filepath.WalkDir(f.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".ndjson") {
			return err
		}
		fh, err := os.Open(path)
		if err != nil {
			return err
		}
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var line struct {
				Op  string `json:"_op"`
				Pos string `json:"_pos"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			pos, err := record.ParsePosition(line.Pos)
			if err != nil || len(line.Op) != 1 {
				return fmt.Errorf("%s: line with _pos %q, _op %q", path, line.Pos, line.Op)
			}
			out = append(out, conformance.Stored{Pos: pos, Op: record.Op(line.Op[0])})
		}
		return sc.Err()
	})
	return out, err
}

// guardedLogger logs to tb until its test ends: a plugin's log lines can arrive
// from the host's goroutines after that.
func guardedLogger(tb testing.TB) *slog.Logger {
	w := &guardedWriter{tb: tb, on: true}
	tb.Cleanup(func() { w.mu.Lock(); w.on = false; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type guardedWriter struct {
	mu sync.Mutex
	tb testing.TB
	on bool
}

func (w *guardedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.on {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
