package mysqle2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/record"
)

// workload changes rows of db.t (id int key, n int, s varchar) at random until
// stopped: inserts, updates, deletes, single statements and transactions.
type workload struct {
	db      *sql.DB
	table   string
	rnd     *rand.Rand
	next    int // highest id inserted
	changes int

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan error
}

func (w *workload) step(ctx context.Context) error {
	id := 1 + w.rnd.Intn(w.next)
	var q string
	switch w.rnd.Intn(5) {
	case 0, 1:
		w.next++
		q = fmt.Sprintf("INSERT INTO %s VALUES (%d, 0, 'new')", w.table, w.next)
	case 2:
		q = fmt.Sprintf("UPDATE %s SET n = n + 1, s = CONCAT('u', n) WHERE id = %d", w.table, id)
	case 3:
		q = fmt.Sprintf("DELETE FROM %s WHERE id = %d", w.table, id)
	default:
		w.next += 2
		q = fmt.Sprintf("BEGIN; INSERT INTO %s VALUES (%d, 1, 'tx'), (%d, 1, 'tx'); UPDATE %s SET n = n + 10 WHERE id IN (%d, %d); DELETE FROM %s WHERE id = %d; COMMIT",
			w.table, w.next-1, w.next, w.table, id, 1+w.rnd.Intn(w.next), w.table, 1+w.rnd.Intn(w.next))
	}
	_, err := w.db.ExecContext(ctx, q)
	if err == nil {
		w.changes++
	}
	return err
}

// run starts the workload; errors while the server restarts are retried.
func (w *workload) run() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() {
		fails := 0
		for ctx.Err() == nil {
			if err := w.step(ctx); err != nil && ctx.Err() == nil {
				if fails++; fails > 300 {
					w.done <- err
					return
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			fails = 0
			time.Sleep(time.Millisecond)
		}
		w.done <- nil
	}()
}

func (w *workload) stop(t *testing.T) {
	t.Helper()
	w.stopOnce.Do(func() {
		w.cancel()
		if err := <-w.done; err != nil {
			t.Fatalf("workload: %v", err)
		}
	})
}

func seed(t *testing.T, db *sql.DB, table string, n int) {
	t.Helper()
	mustExec(t, db, fmt.Sprintf("INSERT INTO %s SELECT seq, 0, CONCAT('seed', seq) FROM %s.seq_1_to_%d", table, strings.Split(table, ".")[0], n))
}

// checkRebuild compares the table rebuilt from the lake with the source and checks
// that no position appears twice.
func checkRebuild(t *testing.T, db *sql.DB, p *pipe, ns, table string) []row {
	t.Helper()
	lake := lakeRows(t, p.localLake(t), ns, table, "CAST(id AS VARCHAR) AS id", "CAST(n AS VARCHAR) AS n", "s")
	checkPositions(t, lake)
	got := rebuild(lake, "id", "n", "s")
	want := sourceRows(t, db, fmt.Sprintf("SELECT CAST(id AS CHAR) AS id, CAST(n AS CHAR) AS n, s FROM %s.%s", ns, table), "id", "n", "s")
	compareLines(t, ns+"."+table, got, want)
	return lake
}

func TestSnapshotWhileWritingLosesAndDoublesNothing(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2ebusy; CREATE TABLE e2ebusy.t (id int PRIMARY KEY, n int, s varchar(20))")
	seed(t, db, "e2ebusy.t", 60000)
	w := &workload{db: db, table: "e2ebusy.t", rnd: rand.New(rand.NewSource(7)), next: 60000}
	w.run()
	defer w.stop(t)
	p := newPipe(t, "e2e_busy", "e2ebusy", false)
	time.Sleep(200 * time.Millisecond)
	p.sync(t) // snapshot (two chunks) while the workload writes, then the stream to where it was at the start
	before := w.changes
	time.Sleep(300 * time.Millisecond)
	w.stop(t)
	p.sync(t)
	lake := checkRebuild(t, db, p, "e2ebusy", "t")
	ops := map[string]int{}
	for _, r := range lake {
		ops[r["_op"]]++
	}
	t.Logf("%d changes during the first sync, %d in all; lake records by op: %v", before, w.changes, ops)
	if ops["r"] == 0 || ops["c"] == 0 || ops["u"] == 0 || ops["d"] == 0 {
		t.Errorf("expected snapshot rows and every kind of change, got %v", ops)
	}
}

func TestDDLMidStreamKeepsEachRowsSchema(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2eddl; CREATE TABLE e2eddl.t (id int PRIMARY KEY, a int); INSERT INTO e2eddl.t VALUES (1, 10)")
	p := newPipe(t, "e2e_ddl", "e2eddl", false)
	p.sync(t)
	mustExec(t, db, `INSERT INTO e2eddl.t VALUES (2, 20);
ALTER TABLE e2eddl.t ADD COLUMN b varchar(10) AFTER id;
INSERT INTO e2eddl.t VALUES (3, '33', 30);
ALTER TABLE e2eddl.t DROP COLUMN a, MODIFY b bigint unsigned;
INSERT INTO e2eddl.t VALUES (4, 18446744073709551615);
ALTER TABLE e2eddl.t RENAME COLUMN b TO c;
UPDATE e2eddl.t SET c = 5 WHERE id = 4;
TRUNCATE e2eddl.t;
INSERT INTO e2eddl.t VALUES (6, 6)`)
	p.sync(t)
	lake := lakeRows(t, p.localLake(t), "e2eddl", "t", "CAST(id AS VARCHAR) AS id", "CAST(a AS VARCHAR) AS a",
		"CAST(b AS VARCHAR) AS b", "CAST(c AS VARCHAR) AS c")
	checkPositions(t, lake)
	var got []string
	for _, r := range lake {
		cell := func(c string) string {
			if v, ok := r[c]; ok {
				return v
			}
			return "-"
		}
		got = append(got, fmt.Sprintf("%s%s a=%s b=%s c=%s", r["_op"], cell("id"), cell("a"), cell("b"), cell("c")))
	}
	want := []string{
		"r1 a=10 b=- c=-",
		"c2 a=20 b=- c=-",
		"c3 a=30 b=33 c=-",
		"c4 a=- b=18446744073709551615 c=-",
		"u4 a=- b=- c=5",
		"t- a=- b=- c=-",
		"c6 a=- b=- c=6",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lake rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestKilledRunResumesExactlyAcrossFlushLogsAndServerRestart: `connectd run` is
// killed with SIGKILL during the snapshot and while streaming, and restarted after
// FLUSH LOGS and after MariaDB restarts, while a workload writes; the lake rebuilt
// at the end equals the table and no position is in it twice.
func TestKilledRunResumesExactlyAcrossFlushLogsAndServerRestart(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2ekill; CREATE TABLE e2ekill.t (id int PRIMARY KEY, n int, s varchar(20))")
	seed(t, db, "e2ekill.t", 150000)
	p := newPipe(t, "e2e_kill", "e2ekill", true)
	p.flush = "{rows: 20000, bytes: 16MiB, interval: 300ms}" // commits inside the snapshot
	p.write(t)
	w := &workload{db: db, table: "e2ekill.t", rnd: rand.New(rand.NewSource(11)), next: 150000}
	w.run()
	defer w.stop(t)

	store, err := offsets.NewFile(p.offsets)
	if err != nil {
		t.Fatal(err)
	}
	// waitPos polls the committed position (the offset file, as `connectd offsets
	// show` reads it) until cond holds.
	waitPos := func(d *daemon, what string, cond func(record.Position) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if pos, err := store.Load(context.Background(), p.name); err == nil && pos != nil && cond(pos) {
				return
			}
			select {
			case <-d.proc.Done():
				t.Fatalf("%s: connectd run exited: %v\n%s", what, d.proc.Err(), tail(d.stderr.String(), 40))
			case <-time.After(2 * time.Millisecond):
			}
		}
		t.Fatalf("%s: not reached\n%s", what, tail(d.stderr.String(), 40))
	}
	// Snapshot positions start 0x01 and end 0xff (plus where the stream starts) on
	// the last record; stream positions start 0x02 (sources/mysql/position.go).
	inSnapshot := func(p record.Position) bool { return p[0] == 0x01 && p[17] != 0xff }
	streaming := func(p record.Position) bool { return p[0] == 0x02 }

	// 1. Killed in the middle of the snapshot, after a commit.
	d := p.start(t)
	waitPos(d, "a committed position inside the snapshot", inSnapshot)
	d.kill()
	// 2. Restarted: the snapshot resumes; killed once streaming.
	d = p.start(t)
	waitPos(d, "streaming", streaming)
	time.Sleep(500 * time.Millisecond)
	d.kill()
	if !strings.Contains(d.stderr.String(), "resuming the interrupted snapshot") {
		t.Errorf("the second run did not resume the snapshot:\n%s", tail(d.stderr.String(), 30))
	}
	// 3. FLUSH LOGS while it is down and while it runs, then killed again.
	mustExec(t, db, "FLUSH LOGS")
	d = p.start(t)
	time.Sleep(time.Second)
	mustExec(t, db, "FLUSH LOGS")
	time.Sleep(time.Second)
	d.kill()
	// 4. MariaDB restarted under a running connectd, then connectd killed; then
	// MariaDB restarted while connectd is down.
	d = p.start(t)
	time.Sleep(time.Second)
	if err := mariaServer(t).Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	d.kill()
	if err := mariaServer(t).Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	d = p.start(t)
	time.Sleep(time.Second)
	w.stop(t)
	d.proc.Signal(syscall.SIGTERM)
	<-d.proc.Done()
	if code := d.proc.ExitCode(); code != 0 {
		t.Errorf("connectd run after SIGTERM: exit %d\n%s", code, tail(d.stderr.String(), 30))
	}
	p.sync(t) // everything committed at the source by now
	lake := checkRebuild(t, db, p, "e2ekill", "t")
	epochs := map[string]bool{}
	for _, r := range lake {
		if r["_op"] == "r" {
			epochs[r["_pos"][:10]] = true // 01 | epoch
		}
	}
	if len(epochs) != 1 {
		t.Errorf("snapshot rows of %d epochs: the snapshot was taken again instead of resumed", len(epochs))
	}
	t.Logf("%d workload changes, %d lake records", w.changes, len(lake))
}

func TestCheckOnStatementBinlogFailsWithTheFix(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2echeck; CREATE TABLE e2echeck.t (id int PRIMARY KEY)")
	p := newPipe(t, "e2e_check", "e2echeck", false)
	if r := connectd(t, 30*time.Second, "check", "-c", p.config); r.code != 0 {
		t.Fatalf("check on a healthy server: %s", r)
	}
	mustExec(t, db, "SET GLOBAL binlog_format = 'STATEMENT'")
	defer mustExec(t, db, "SET GLOBAL binlog_format = 'ROW'")
	r := connectd(t, 30*time.Second, "check", "-c", p.config)
	out := r.stdout + r.stderr
	if r.code != 1 || !strings.Contains(out, "STATEMENT") || !strings.Contains(out, "SET GLOBAL binlog_format = 'ROW'") {
		t.Fatalf("check on a STATEMENT binlog: want exit 1 naming the fix, got %s", r)
	}
	t.Logf("check output:\n%s", strings.TrimSpace(r.stdout))
}
