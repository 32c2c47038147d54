package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/conformance"
	"github.com/connectd/connectd/offsets"
	"github.com/jackc/pgx/v5"
)

// TestConformance runs the connector suite against the source on a real
// PostgreSQL server with wal_level=logical.
func TestConformance(t *testing.T) {
	conformance.TestSource(t, conformanceDriver{dsn: pgServer(t).DSN})
}

// conformanceDriver gives each check its own table and connector name (so its own
// slot and publication), with a snapshot chunk small enough for the suite's rows to
// span several chunks.
type conformanceDriver struct{ dsn string }

// Sizes gives each phase more rows than two full emits hold (snapshotBatch, streamBatch),
// so that the suite's restarts land inside the snapshot and inside the stream.
func (conformanceDriver) Sizes() (snapshot, stream int) {
	return 2*snapshotBatch + 900, 2*streamBatch + 450
}

var conformanceSeq atomic.Int64

func (d conformanceDriver) Setup(ctx context.Context, tb testing.TB) (conformance.SourceFixture, error) {
	name := fmt.Sprintf("conformance_%d", conformanceSeq.Add(1))
	conn, err := pgx.Connect(ctx, d.dsn)
	if err != nil {
		return nil, err
	}
	store, err := offsets.NewFile(tb.TempDir())
	if err != nil {
		conn.Close(ctx)
		return nil, err
	}
	f := &pgFixture{dsn: d.dsn, name: name, conn: conn, logger: tbLogger(tb), state: store.State(name)}
	tb.Cleanup(f.drop)
	if _, err := conn.Exec(ctx, "CREATE TABLE "+name+" (id int PRIMARY KEY, v text NOT NULL)"); err != nil {
		return nil, err
	}
	return f, nil
}

type pgFixture struct {
	dsn, name string
	conn      *pgx.Conn
	logger    *slog.Logger
	state     connector.StateStore // what the offsets store keeps beside the position
	rows      int
}

// sourceConfig is the one place the driver builds the connector's config.
func (f *pgFixture) sourceConfig() config.Source {
	return config.Source{Type: "postgres", Config: &Config{
		DSN: f.dsn, Tables: []string{"public." + f.name}, Snapshot: config.SnapshotInitial, SnapshotChunk: 700,
	}}
}

func (f *pgFixture) slot() string { return "connectd_" + f.name }

func (f *pgFixture) Open(ctx context.Context, mode connector.Mode) (connector.Source, error) {
	// The server ends the walsender of a closed connection a moment later; a source
	// opened before then finds its slot active (the supervisor's retry covers it
	// in production).
	waitSlotReleased(f.dsn, f.slot())
	return Kind{}.Open(ctx, connector.SourceParams{
		Name: f.name, Config: f.sourceConfig(), Mode: mode,
		Logger: f.logger.With("connector", f.name), Status: connector.NopStatus{}, State: f.state,
	})
}

// Insert commits n rows in transactions of up to 97, so that a batch (and so a
// restart) can end in the middle of a transaction.
func (f *pgFixture) Insert(ctx context.Context, n int) error {
	for n > 0 {
		k := min(n, 97)
		if _, err := f.conn.Exec(ctx, "INSERT INTO "+f.name+" SELECT g, 'row ' || g FROM generate_series($1::int, $2::int) g", f.rows+1, f.rows+k); err != nil {
			return fmt.Errorf("insert rows %d..%d: %w", f.rows+1, f.rows+k, err)
		}
		f.rows += k
		n -= k
	}
	return nil
}

func (f *pgFixture) drop() {
	ctx := context.Background()
	defer f.conn.Close(ctx)
	waitSlotReleased(f.dsn, f.slot())
	for _, sql := range []string{
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '" + f.slot() + "'",
		"DROP PUBLICATION IF EXISTS connectd_" + f.name,
		"DROP TABLE IF EXISTS " + f.name,
	} {
		_, _ = f.conn.Exec(ctx, sql)
	}
}

// tbLogger logs to tb until its test ends (a source's late goroutines must not
// log to a finished test).
func tbLogger(tb testing.TB) *slog.Logger {
	w := &tbWriter{tb: tb, on: true}
	tb.Cleanup(func() { w.mu.Lock(); w.on = false; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tbWriter struct {
	mu sync.Mutex
	tb testing.TB
	on bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.on {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
