package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/record"
)

// sharedMaria is the server every test against a real server shares, started by
// the first of them (none in -short mode, so unit tests and fuzz workers run without
// one); each test uses its own database.
var sharedMaria = testenv.SharedMariaDB(testenv.MariaDBOptions{ExtraConf: map[string]string{"binlog_row_metadata": "FULL"}})

// mariaServer returns the shared server, starting it on first use; it skips t in
// -short mode.
func mariaServer(t testing.TB) *testenv.MariaDB { t.Helper(); return sharedMaria.Get(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	if err := sharedMaria.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func exec(t *testing.T, sql string) {
	t.Helper()
	if err := mariaServer(t).Exec(testCtx(t), sql); err != nil {
		t.Fatal(err)
	}
}

type tlogWriter struct {
	mu sync.Mutex
	t  *testing.T
	on bool
}

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.on {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// harness runs one connector's source the way the pipeline does: Read from the
// committed position, collect, commit.
type harness struct {
	t         *testing.T
	name      string
	tables    []string
	snapshot  string
	state     connector.StateStore
	committed record.Position
	got       []record.Record
	slow      time.Duration // pause per emitted batch, as a slow destination would
	chunk     uint32        // rows per snapshot query; 0: the default
	tinyBool  bool          // tinyint1_as_boolean
	setup     func(*Source) // runs on the source before Read
}

func newHarness(t *testing.T, name string, tables ...string) *harness {
	f, err := offsets.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, name: name, tables: tables, snapshot: config.SnapshotInitial, state: f.State(name)}
}

func (h *harness) params(mode connector.Mode) connector.SourceParams {
	w := &tlogWriter{t: h.t, on: true}
	h.t.Cleanup(func() { w.mu.Lock(); w.on = false; w.mu.Unlock() })
	return connector.SourceParams{
		Name: h.name,
		Config: config.Source{Type: "mysql", Config: &Config{
			DSN: mariaServer(h.t).DSN, Tables: h.tables, Snapshot: h.snapshot, ServerID: 7000 + int64(len(h.name)),
			TinyInt1AsBoolean: h.tinyBool,
		}},
		Mode:   mode,
		Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Status: connector.NopStatus{},
		State:  h.state,
	}
}

// sync runs Read in ModeSync from the committed position and commits everything.
func (h *harness) sync() []record.Record {
	h.t.Helper()
	recs, err := h.run(connector.ModeSync, -1)
	if err != nil {
		h.t.Fatalf("sync: %v", err)
	}
	return recs
}

var errCrash = errors.New("simulated crash")

// run reads; with limit >= 0 it "crashes" after accepting that many records (they
// are committed), as a pipeline dying mid-transaction would.
func (h *harness) run(mode connector.Mode, limit int) ([]record.Record, error) {
	ctx := testCtx(h.t)
	src, err := Kind{}.Open(ctx, h.params(mode))
	if err != nil {
		return nil, err
	}
	if h.chunk > 0 {
		src.(*Source).chunk = h.chunk
	}
	if h.setup != nil {
		h.setup(src.(*Source))
	}
	defer src.Close(ctx)
	var got []record.Record
	emit := func(ctx context.Context, recs []record.Record) error {
		time.Sleep(h.slow)
		for _, r := range recs {
			if limit >= 0 && len(got) >= limit {
				return errCrash
			}
			if h.committed != nil && r.Pos.Compare(h.committed) <= 0 {
				h.t.Fatalf("position %s emitted again (committed %s)", describePos(r.Pos), describePos(h.committed))
			}
			got = append(got, r)
			h.committed = r.Pos
		}
		return src.Ack(ctx, h.committed)
	}
	err = src.Read(ctx, h.committed, emit)
	h.got = append(h.got, got...)
	return got, err
}

// vals maps column names to values of a record's row image.
func vals(r record.Record) map[string]any {
	out := map[string]any{}
	for i, c := range r.Schema.Columns {
		out[c.Name] = r.Row()[i]
	}
	return out
}

func ops(recs []record.Record) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.Op.String())
	}
	return b.String()
}

// checkUniquePositions fails on a repeated or out-of-order position.
func checkUniquePositions(t *testing.T, recs []record.Record) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		if recs[i].Pos.Compare(recs[i-1].Pos) <= 0 {
			t.Fatalf("record %d position %s does not sort after %s", i, describePos(recs[i].Pos), describePos(recs[i-1].Pos))
		}
	}
}
