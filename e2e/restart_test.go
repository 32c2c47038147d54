package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// change is one row change the writer made, in commit order.
type change struct {
	op string // c, u or d
	id int
	v  int // the row's v after the change (0 for deletes)
}

// writer changes the table continuously from its own connection and logs every
// change in commit order. With one connection, commit order is statement order.
type writer struct {
	conn   *pgx.Conn
	rng    *rand.Rand
	live   []int // ids currently in the table
	nextID int

	mu  sync.Mutex
	log []change
	err error
}

func (w *writer) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := w.step(); err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
		time.Sleep(time.Duration(2+w.rng.IntN(8)) * time.Millisecond)
	}
}

// step commits one transaction of one to three changes.
func (w *writer) step() error {
	ctx := context.Background()
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	var done []change
	live := append([]int(nil), w.live...)
	next := w.nextID
	for n := 1 + w.rng.IntN(3); n > 0; n-- {
		k := w.rng.IntN(100)
		switch {
		case k < 25 || len(live) < 5:
			if _, err := tx.Exec(ctx, "INSERT INTO public.accounts (id, v, note) VALUES ($1, 0, 'inserted')", next); err != nil {
				return err
			}
			done = append(done, change{"c", next, 0})
			live = append(live, next)
			next++
		case k < 85:
			id := live[w.rng.IntN(len(live))]
			var v int
			if err := tx.QueryRow(ctx, "UPDATE public.accounts SET v = v + 1 WHERE id = $1 RETURNING v", id).Scan(&v); err != nil {
				return err
			}
			done = append(done, change{"u", id, v})
		default:
			i := w.rng.IntN(len(live))
			id := live[i]
			if _, err := tx.Exec(ctx, "DELETE FROM public.accounts WHERE id = $1", id); err != nil {
				return err
			}
			done = append(done, change{"d", id, 0})
			live = append(live[:i], live[i+1:]...)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	w.live, w.nextID = live, next
	w.mu.Lock()
	w.log = append(w.log, done...)
	w.mu.Unlock()
	return nil
}

// failure is the error that stopped the writer, if any.
func (w *writer) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *writer) changes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.log)
}

// TestRunStoppedAndRestartedLosesNothing stops `connectd run` again and again while a
// writer changes the table, with SIGTERM and with SIGKILL, and checks that the lake
// ends with every change exactly once, in commit order, and the same table.
func TestRunStoppedAndRestartedLosesNothing(t *testing.T) {
	for _, lake := range []string{"file", "s3"} {
		t.Run(lake, func(t *testing.T) { testRestartsLoseNothing(t, lake == "s3") })
	}
}

func testRestartsLoseNothing(t *testing.T, s3Lake bool) {
	dsn, conn := newDatabase(t, "e2e_restart")
	const initial = 20
	mustExec(t, conn, fmt.Sprintf(`CREATE TABLE public.accounts (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO public.accounts SELECT g, 0, 'initial' FROM generate_series(1, %d) g`, initial))
	p := newPipe(t, "restart_loses_nothing", dsn, s3Lake, "public.accounts")
	// Small batches: every stop finds some data committed and some in flight.
	p.flush = "{rows: 40, bytes: 1MiB, interval: 300ms}"
	p.writeConfig(t)
	db := lakedb.DuckDB(t)
	p.sync(t) // the snapshot, complete, before the writer starts

	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	w := &writer{conn: connect(t, dsn), rng: rand.New(rand.NewPCG(seed, 1)), nextID: initial + 1}
	for i := 1; i <= initial; i++ {
		w.live = append(w.live, i)
	}
	ctx, stopWriter := context.WithCancel(context.Background())
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); w.run(ctx) }()
	defer func() { stopWriter(); <-writerDone }()

	signals := []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL, syscall.SIGTERM, syscall.SIGKILL, syscall.SIGTERM, syscall.SIGKILL}
	for i, sig := range signals {
		before := lakeCount(t, db, p.tableDir(t, "public", "accounts"))
		made := w.changes()
		d := startRun(t, p.config)
		// Run until this incarnation has written something new to the lake, then a
		// little longer, so stops land at different points of a flush.
		waitFor(t, 60*time.Second, d, fmt.Sprintf("run %d to write to the lake", i+1), func() (bool, string) {
			n := lakeCount(t, db, p.tableDir(t, "public", "accounts"))
			return n > before && w.changes() > made, fmt.Sprintf("%d lake rows (had %d), writer made %d changes (had %d)", n, before, w.changes(), made)
		})
		time.Sleep(time.Duration(rng.IntN(700)) * time.Millisecond)
		r := d.stop(t, sig)
		switch {
		case sig == syscall.SIGTERM && r.code != 0:
			t.Fatalf("run %d: after SIGTERM want exit 0, got %s", i+1, r)
		case sig == syscall.SIGKILL && r.code != -1:
			t.Fatalf("run %d: SIGKILL should have killed it, got %s", i+1, r)
		}
		if err := w.failure(); err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	stopWriter()
	<-writerDone
	if err := w.failure(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	p.sync(t)

	dir := p.tableDir(t, "public", "accounts")
	rows := readTable(t, db, dir, "CAST(id AS VARCHAR) AS id", "CAST(v AS VARCHAR) AS v", "note")
	checkPositions(t, rows)
	var snap, stream []row
	for _, r := range rows {
		if r.val("_op") == "r" {
			snap = append(snap, r)
		} else {
			stream = append(stream, r)
		}
	}
	if len(snap) != initial {
		t.Errorf("lake has %d snapshot rows, want %d", len(snap), initial)
	}
	// Every change exactly once and in commit order: the streamed records are the
	// writer's log.
	mismatches := 0
	for i := 0; i < max(len(stream), len(w.log)); i++ {
		var got, want string
		if i < len(stream) {
			r := stream[i]
			got = r.val("_op") + " " + r.val("id")
			if r.val("_op") != "d" {
				got += " v=" + r.val("v")
			}
		}
		if i < len(w.log) {
			c := w.log[i]
			want = c.op + " " + strconv.Itoa(c.id)
			if c.op != "d" {
				want += " v=" + strconv.Itoa(c.v)
			}
		}
		if got != want {
			if mismatches < 10 {
				t.Errorf("change %d of %d: lake has %q, writer made %q", i, len(w.log), got, want)
			}
			mismatches++
		}
	}
	if mismatches > 0 {
		t.Errorf("%d of %d changes differ (lake has %d streamed records)", mismatches, len(w.log), len(stream))
	}
	compareTable(t, rebuild(rows, "id"),
		pgRows(t, conn, "SELECT id::text AS id, v::text AS v, note FROM public.accounts"), "id", "v", "note")
	t.Logf("%d changes over %d stops, %d files", len(w.log), len(signals), len(parquetFiles(t, dir)))
}
