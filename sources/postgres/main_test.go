package postgres

import (
	"context"
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
	"github.com/connectd/connectd/record"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// sharedPG is the server every test against a real server shares, started by the
// first of them (none in -short mode, so the unit tests run without one); each test
// uses its own tables, slot and publication (named after the test's connector).
var sharedPG = testenv.SharedPostgres(testenv.PostgresOptions{})

func pgServer(t testing.TB) *testenv.Postgres { t.Helper(); return sharedPG.Get(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	if err := sharedPG.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func dbConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testCtx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec(t *testing.T, conn *pgx.Conn, sqls ...string) {
	t.Helper()
	for _, sql := range sqls {
		if _, err := conn.Exec(testCtx(t), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
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

// testStatus records phases so a test knows when the slot exists.
type testStatus struct {
	connector.NopStatus
	mu       sync.Mutex
	phases   []string
	retained []int64 // every SourceRetained figure, in order
}

func (s *testStatus) SourceRetained(retained, _ int64) {
	s.mu.Lock()
	s.retained = append(s.retained, retained)
	s.mu.Unlock()
}

func (s *testStatus) retainedFigures() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.retained...)
}

func (s *testStatus) SetPhase(p string) {
	s.mu.Lock()
	s.phases = append(s.phases, p)
	s.mu.Unlock()
}

func (s *testStatus) has(p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.phases {
		if q == p {
			return true
		}
	}
	return false
}

func params(t *testing.T, name, dsn string, tables []string, snapshot string, mode connector.Mode) connector.SourceParams {
	w := &tlogWriter{t: t, on: true}
	t.Cleanup(func() { w.mu.Lock(); w.on = false; w.mu.Unlock() })
	return connector.SourceParams{
		Name: name,
		Config: config.Source{Type: "postgres", Config: &Config{
			DSN: dsn, Tables: tables, Snapshot: snapshot,
		}},
		Mode:   mode,
		Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Status: &testStatus{},
	}
}

func openSource(t *testing.T, p connector.SourceParams) *Source {
	t.Helper()
	src, err := Kind{}.Open(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	return src.(*Source)
}

// reader runs a Read in the background and collects what it emits.
type reader struct {
	src    *Source
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	recs   []record.Record
}

func startRead(t *testing.T, src *Source, start record.Position) *reader {
	ctx, cancel := context.WithCancel(context.Background())
	r := &reader{src: src, cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- src.Read(ctx, start, func(ctx context.Context, recs []record.Record) error {
			// Checkpoints carry no data: they are kept out of recs, and a batch of
			// nothing else is acked at once, as the pipeline would once committed,
			// so that an idle slot moves on.
			data := 0
			r.mu.Lock()
			for _, rec := range recs {
				if rec.Op != record.OpCheckpoint {
					r.recs = append(r.recs, rec)
					data++
				}
			}
			r.mu.Unlock()
			if data == 0 {
				return src.Ack(ctx, recs[len(recs)-1].Pos)
			}
			return nil
		})
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *reader) snapshot() []record.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record.Record(nil), r.recs...)
}

// wait returns once n records arrived, failing the test if Read ends or time runs out.
func (r *reader) wait(t *testing.T, n int) []record.Record {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if recs := r.snapshot(); len(recs) >= n {
			return recs
		}
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("Read ended after %d of %d records: %v", len(r.snapshot()), n, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("got %d records, want %d", len(r.snapshot()), n)
	return nil
}

// waitPhase waits until the source reached a phase (the slot exists by then).
func (r *reader) waitPhase(t *testing.T, phase string) {
	t.Helper()
	st := r.src.status.(*testStatus)
	deadline := time.Now().Add(60 * time.Second)
	for !st.has(phase) {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("Read ended before phase %s: %v", phase, err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("phase %s not reached", phase)
		}
	}
}

// result waits for Read to return.
func (r *reader) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(90 * time.Second):
		t.Fatal("Read did not return")
		return nil
	}
}

func (r *reader) stop() {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
	case <-time.After(30 * time.Second):
	}
	r.src.Close(context.Background())
	waitSlotReleased(r.src.st.dsn, r.src.st.slot)
}

// waitSlotReleased waits until no walsender holds the slot: the server ends the old
// walsender a moment after its connection closes, and a Read started before that
// fails with "slot is active" (in production the supervisor's retry covers it).
func waitSlotReleased(dsn, slot string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	for ctx.Err() == nil {
		var active bool
		err := conn.QueryRow(ctx, "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
		if err != nil || !active {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func slotConfirmed(t *testing.T, conn *pgx.Conn, slot string) pglogrepl.LSN {
	t.Helper()
	var s *string
	err := conn.QueryRow(testCtx(t), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&s)
	if err != nil {
		t.Fatalf("read slot %s: %v", slot, err)
	}
	if s == nil {
		return 0
	}
	lsn, err := pglogrepl.ParseLSN(*s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

func values(r record.Record) map[string]any {
	row := r.After
	if r.Op == record.OpDelete {
		row = r.Before
	}
	m := map[string]any{}
	for i, c := range r.Schema.Columns {
		m[c.Name] = row[i]
	}
	return m
}

// snapshotAfter waits for n records, or returns nil when Read fails first with a
// transient error.
func (r *reader) snapshotAfter(t *testing.T, n int) []record.Record {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if recs := r.snapshot(); len(recs) >= n {
			time.Sleep(100 * time.Millisecond)
			return r.snapshot()
		}
		select {
		case err := <-r.done:
			r.done <- err
			if connector.IsPermanent(err) {
				t.Fatalf("restart: %v", err)
			}
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("got %d records, want %d", len(r.snapshot()), n)
	return nil
}
