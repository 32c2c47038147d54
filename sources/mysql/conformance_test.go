package mysql

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
	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/offsets"
)

// TestConformance runs the connector suite against the source on a real MariaDB
// server with a row-based binlog.
func TestConformance(t *testing.T) {
	conformance.TestSource(t, conformanceDriver{maria: mariaServer(t)})
}

// conformanceDriver gives each check its own database, connector name, server id
// and offsets state, with a snapshot chunk small enough for the suite's rows to
// span several chunks.
type conformanceDriver struct{ maria *testenv.MariaDB }

// Sizes gives each phase more rows than two full emits hold (batchSize), so that the
// suite's restarts land inside the snapshot and inside the stream.
func (conformanceDriver) Sizes() (snapshot, stream int) {
	return 2*batchSize + 450, 2*batchSize + 400
}

var conformanceSeq atomic.Int64

func (d conformanceDriver) Setup(ctx context.Context, tb testing.TB) (conformance.SourceFixture, error) {
	n := conformanceSeq.Add(1)
	name := fmt.Sprintf("conformance_%d", n)
	store, err := offsets.NewFile(tb.TempDir())
	if err != nil {
		return nil, err
	}
	f := &mysqlFixture{maria: d.maria, name: name, serverID: 7500 + uint32(n), state: store.State(name), logger: tbLogger(tb)}
	if err := d.maria.Exec(ctx, "CREATE DATABASE "+name+"; CREATE TABLE "+name+".t (id int PRIMARY KEY, v varchar(40) NOT NULL)"); err != nil {
		return nil, err
	}
	tb.Cleanup(func() { _ = d.maria.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name) })
	return f, nil
}

type mysqlFixture struct {
	maria    *testenv.MariaDB
	name     string
	serverID uint32
	state    connector.StateStore
	logger   *slog.Logger
	rows     int
}

// sourceConfig is the one place the driver builds the connector's config.
func (f *mysqlFixture) sourceConfig() config.Source {
	return config.Source{Type: "mysql", Config: &Config{
		DSN: f.maria.DSN, Tables: []string{f.name + ".t"}, Snapshot: config.SnapshotInitial, ServerID: int64(f.serverID),
	}}
}

func (f *mysqlFixture) Open(ctx context.Context, mode connector.Mode) (connector.Source, error) {
	src, err := Kind{}.Open(ctx, connector.SourceParams{
		Name: f.name, Config: f.sourceConfig(), Mode: mode,
		Logger: f.logger.With("connector", f.name), Status: connector.NopStatus{}, State: f.state,
	})
	if err != nil {
		return nil, err
	}
	src.(*Source).chunk = 300 // several snapshot queries per emitted batch
	return src, nil
}

// Insert commits n rows in transactions of up to 97, so that a batch (and so a
// restart) can end in the middle of a transaction.
func (f *mysqlFixture) Insert(ctx context.Context, n int) error {
	var b strings.Builder
	for n > 0 {
		k := min(n, 97)
		b.WriteString("BEGIN; INSERT INTO " + f.name + ".t VALUES ")
		for i := f.rows + 1; i <= f.rows+k; i++ {
			if i > f.rows+1 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d, 'row %d')", i, i)
		}
		b.WriteString("; COMMIT;\n")
		f.rows += k
		n -= k
	}
	return f.maria.Exec(ctx, b.String())
}

// tbLogger logs to tb until its test ends (a source's late goroutines must not log
// to a finished test).
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
