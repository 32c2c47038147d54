package fault

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the workload's client for MariaDB

	"github.com/connectd/connectd/internal/testenv"
)

// mariaSpecs are the MariaDB workload's tables. The binlog carries full row images
// (binlog_row_image=FULL), so every delete carries the old version.
var mariaSpecs = []*tableSpec{
	{
		name: "faultdb.items", full: true, srcVer: "CAST(ver AS CHAR)",
		cols: []string{"name", "amount", "qty", "ts", "note"},
		expr: []string{
			`CONCAT('item ', V, ' ü''"')`,
			`MOD(V * 37, 10000000) / 100 - 50000`,
			`MOD(V, 30000)`,
			`TIMESTAMPADD(MICROSECOND, V * 1000 + MOD(V, 997), TIMESTAMP'2026-01-01 00:00:00')`,
			`IF(MOD(V, 7) = 0, NULL, CONCAT('n', V))`,
		},
		lakeCols: []string{"name", "CAST(amount AS VARCHAR)", "CAST(qty AS VARCHAR)", "CAST(epoch_us(ts) AS VARCHAR)", "note"},
		srcCols: []string{"name", "CAST(amount AS CHAR)", "CAST(qty AS CHAR)",
			"CAST(TIMESTAMPDIFF(MICROSECOND, TIMESTAMP'1970-01-01 00:00:00', ts) AS CHAR)", "note"},
	},
	{
		name: "faultdb.logs", full: true, srcVer: "CAST(ver AS CHAR)",
		cols:     []string{"msg", "n"},
		expr:     []string{`CONCAT('log ', V)`, `MOD(V * 7919, 4000000000)`},
		lakeCols: []string{"msg", "CAST(n AS VARCHAR)"},
		srcCols:  []string{"msg", "CAST(n AS CHAR)"},
	},
}

const mariaDDL = `CREATE DATABASE faultdb;
CREATE TABLE faultdb.items (id BIGINT PRIMARY KEY, ver BIGINT NOT NULL, name VARCHAR(100), amount DECIMAL(12,2),
  qty SMALLINT, ts DATETIME(6), note TEXT NULL) ENGINE=InnoDB;
CREATE TABLE faultdb.logs (id BIGINT PRIMARY KEY, ver BIGINT NOT NULL, msg VARCHAR(200), n INT UNSIGNED) ENGINE=InnoDB;`

// mariaWorkload is the random workload on MariaDB: the same model as PostgreSQL's,
// through database/sql with one connection.
type mariaWorkload struct {
	db        *sql.DB
	rng       *rand.Rand
	m         *model
	committed atomic.Int64
	txns      atomic.Int64
}

func (w *mariaWorkload) vals(s *tableSpec, id, ver int64) string {
	return fmt.Sprintf("(%d, %d, %s)", id, ver, strings.Join(s.values(fmt.Sprint(ver)), ", "))
}

// op runs one random statement in tx (or autocommit when tx is nil).
func (w *mariaWorkload) op(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, u *undo) error {
	m := w.m
	tm := m.tables[w.rng.Intn(len(m.tables))]
	s := tm.spec
	exec := func(q string, want int64) error {
		res, err := ex.ExecContext(ctx, q)
		if err != nil {
			return fmt.Errorf("mariadb workload: %s: %w", q, err)
		}
		if n, _ := res.RowsAffected(); n != want {
			return fmt.Errorf("mariadb workload: %s: %d rows changed, the model expected %d", q, n, want)
		}
		return nil
	}
	newVer := func() int64 { v := m.nextVer; m.nextVer++; return v }
	newID := func() int64 { id := tm.nextID; tm.nextID++; return id }
	pick := func() int64 { return tm.live.ids[w.rng.Intn(len(tm.live.ids))] }
	cols := "id, ver, " + strings.Join(s.cols, ", ")
	r := w.rng.Intn(100)
	if len(tm.live.ids) < 20 {
		r = 0
	}
	switch {
	case r < 35: // insert of 1 to 20 rows in one statement
		k := 1 + w.rng.Intn(20)
		var rows []string
		var ids, vers []int64
		for i := 0; i < k; i++ {
			id, v := newID(), newVer()
			ids, vers = append(ids, id), append(vers, v)
			rows = append(rows, w.vals(s, id, v))
		}
		if err := exec(fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", s.name, cols, strings.Join(rows, ", ")), int64(k)); err != nil {
			return err
		}
		for i := range ids {
			tm.set(u, ids[i], vers[i])
			tm.record(u, m, ids[i], change{'c', vers[i]})
		}
	case r < 65: // update of 1 to 10 rows in one statement; later SET items see the new ver
		seen := map[int64]bool{}
		var ids, vers []int64
		var when []string
		for i := 0; i < 1+w.rng.Intn(10); i++ {
			if id := pick(); !seen[id] {
				seen[id] = true
				v := newVer()
				ids, vers = append(ids, id), append(vers, v)
				when = append(when, fmt.Sprintf("WHEN %d THEN %d", id, v))
			}
		}
		in := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(ids)), ", "), "[]")
		q := fmt.Sprintf("UPDATE %s SET ver = CASE id %s END, %s WHERE id IN (%s)", s.name, strings.Join(when, " "),
			strings.TrimPrefix(s.setList("ver"), "ver = ver, "), in)
		if err := exec(q, int64(len(ids))); err != nil {
			return err
		}
		for i := range ids {
			tm.set(u, ids[i], vers[i])
			tm.record(u, m, ids[i], change{'u', vers[i]})
		}
	case r < 75: // key-changing update
		old, id, v := pick(), newID(), newVer()
		q := fmt.Sprintf("UPDATE %s SET id = %d, %s WHERE id = %d", s.name, id, s.setList(fmt.Sprint(v)), old)
		if err := exec(q, 1); err != nil {
			return err
		}
		tm.record(u, m, old, tm.deleteChange(old))
		tm.del(u, old)
		tm.set(u, id, v)
		tm.record(u, m, id, change{'c', v})
	default: // delete of 1 to 5 rows
		seen := map[int64]bool{}
		var ids []int64
		for i := 0; i < 1+w.rng.Intn(5); i++ {
			if id := pick(); !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		in := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(ids)), ", "), "[]")
		if err := exec(fmt.Sprintf("DELETE FROM %s WHERE id IN (%s)", s.name, in), int64(len(ids))); err != nil {
			return err
		}
		for _, id := range ids {
			tm.record(u, m, id, tm.deleteChange(id))
			tm.del(u, id)
		}
	}
	return nil
}

// step runs one transaction: one statement in autocommit, or several that commit
// or roll back.
func (w *mariaWorkload) step(ctx context.Context) error {
	var u undo
	before := w.m.changes
	if w.rng.Intn(2) == 0 {
		if err := w.op(ctx, w.db, &u); err != nil {
			return err
		}
	} else {
		tx, err := w.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("mariadb workload: begin: %w", err)
		}
		for i := 0; i < 2+w.rng.Intn(15); i++ {
			if err := w.op(ctx, tx, &u); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if w.rng.Intn(10) == 0 {
			if err := tx.Rollback(); err != nil {
				return fmt.Errorf("mariadb workload: rollback: %w", err)
			}
			u.run()
			return nil
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("mariadb workload: commit: %w", err)
		}
	}
	w.committed.Add(w.m.changes - before)
	w.txns.Add(1)
	return nil
}

// big inserts n rows into faultdb.logs in one transaction (the sequence engine
// generates them).
func (w *mariaWorkload) big(ctx context.Context, n int64) error {
	tm := w.m.byName["faultdb.logs"]
	id0, ver0 := tm.nextID, w.m.nextVer
	v := fmt.Sprintf("(seq + %d)", ver0-1)
	q := fmt.Sprintf("INSERT INTO %s (id, ver, %s) SELECT seq + %d, %s, %s FROM seq_1_to_%d", tm.spec.name,
		strings.Join(tm.spec.cols, ", "), id0-1, v, strings.Join(tm.spec.values(v), ", "), n)
	if _, err := w.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("mariadb workload: big transaction: %w", err)
	}
	var u undo
	for i := int64(0); i < n; i++ {
		tm.set(&u, id0+i, ver0+i)
		tm.record(&u, w.m, id0+i, change{'c', ver0 + i})
	}
	tm.nextID += n
	w.m.nextVer += n
	w.committed.Add(n)
	return nil
}

// TestMariaDBFaults runs a random workload on MariaDB while connectd streams its
// binlog to S3 and to a file:// lake, kills connectd, kills the binlog dump thread
// and restarts the server; then it checks both lakes change by change.
func TestMariaDBFaults(t *testing.T) { mariaFaults(t, false) }

// TestMariaDBSnapshotFaults kills connectd during the initial snapshot of a MariaDB
// table; the snapshot must resume, so every row is in each lake once.
func TestMariaDBSnapshotFaults(t *testing.T) {
	mariaFaults(t, true)
}

// mariaFaults is the MariaDB suite: with snapshot, kills during the initial snapshot
// of a larger table and nothing else; without, faults while the workload streams.
func mariaFaults(t *testing.T, snapshot bool) {
	s := seed()
	t.Logf("seed %d (rerun with -seed %d or FAULT_SEED=%d)", s, s, s)
	rng := rand.New(rand.NewSource(s))
	ctx := context.Background()
	kills, dumps, restarts, preload, bigTxn := 10, 3, 2, int64(5_000), int64(20_000)
	if long() {
		kills, dumps, restarts, bigTxn = killCount(1000)/4, 30, 10, 1_000_000
	}
	if snapshot {
		preload = 100_000
		if long() {
			preload = 500_000
		}
	}
	maria, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{})
	if err != nil {
		t.Fatalf("start mariadb: %v", err)
	}
	t.Cleanup(func() { maria.Stop() })
	if err := maria.Exec(ctx, mariaDDL); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", strings.TrimSuffix(maria.DSN, "/")+"/faultdb?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })

	dsn := fmt.Sprintf("mysql://root@127.0.0.1:%d/", maria.Port)
	n := serial.Add(1)
	serverID := 5400
	e := newEnv(t, "maria", n, rng, "512m", newModel(mariaSpecs), func(conn string) string {
		serverID++ // each connector is a replica of its own
		return fmt.Sprintf("    source:\n      type: mysql\n      dsn: %q\n      server_id: %d\n      tables: [\"faultdb.*\"]\n", dsn, serverID)
	})
	e.src = sqlRows(db)
	if code, out := runCmd(t, 2*time.Minute, "check", "-c", e.config); code != 0 {
		if strings.Contains(out, "mysql") && code == 2 {
			t.Skipf("this connectd has no mysql source: %s", tailString(out, 5))
		}
		t.Fatalf("connectd check: exit %d\n%s", code, tailString(out, 40))
	}

	w := &mariaWorkload{db: db, rng: rand.New(rand.NewSource(rng.Int63())), m: e.m}
	// Preload through the big-transaction path, then count those rows as snapshot reads.
	if err := w.big(ctx, preload); err != nil {
		t.Fatal(err)
	}
	for _, tm := range e.m.tables {
		for id, h := range tm.hist {
			for i := range h {
				h[i].op = 'r'
			}
			tm.hist[id] = h
		}
	}
	w.committed.Store(0)

	if snapshot {
		for i := 0; i < 20 && !e.snapshotCommitted(); i++ {
			if i%3 == 2 {
				e.killAfterFlush()
			} else {
				e.killAfter(time.Second)
			}
		}
		t.Logf("%d kills during the snapshot", e.faults)
		e.waitSnapshot(20 * time.Minute)
		e.finish()
		return
	}
	e.waitSnapshot(10 * time.Minute)

	// The workload runs in the background, one transaction at a time under a lock so
	// a server restart falls between two transactions.
	var mu = make(chan struct{}, 1)
	stop, done := make(chan struct{}), make(chan error, 1)
	bigReq := make(chan int64, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			case n := <-bigReq:
				mu <- struct{}{}
				err := w.big(ctx, n)
				<-mu
				if err != nil {
					done <- err
					return
				}
			default:
			}
			mu <- struct{}{}
			err := w.step(ctx)
			<-mu
			if err != nil {
				done <- err
				return
			}
			time.Sleep(time.Duration(rng.Int63n(int64(5 * time.Millisecond))))
		}
	}()
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			<-done
		}
	}()

	killDump := func() {
		e.ensureRunning()
		deadline := time.Now().Add(60 * time.Second)
		for {
			out, err := maria.Query(ctx, "SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'")
			if err != nil {
				t.Fatal(err)
			}
			ids := strings.Fields(out)
			for _, id := range ids {
				_ = maria.Exec(ctx, "KILL "+id) // it may be gone already
			}
			if len(ids) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no binlog dump thread to kill within 60s; log tail:\n%s", e.d.logTail(40))
			}
			time.Sleep(100 * time.Millisecond)
		}
		e.count("KILL of the binlog dump thread")
	}
	restart := func(crash bool) {
		e.ensureRunning()
		mu <- struct{}{}
		defer func() { <-mu }()
		if crash {
			maria.Kill()
		}
		if err := maria.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if crash {
			e.count("MariaDB crash (SIGKILL) and restart")
		} else {
			e.count("MariaDB restart")
		}
	}
	var faults []func()
	for i := 0; i < kills; i++ {
		if i%3 == 2 {
			faults = append(faults, e.killAfterFlush)
		} else {
			faults = append(faults, func() { e.killAfter(2 * time.Second) })
		}
	}
	for i := 0; i < dumps; i++ {
		faults = append(faults, killDump)
	}
	for i := 0; i < restarts; i++ {
		faults = append(faults, func() { restart(rng.Intn(2) == 0) })
	}
	rng.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	big := len(faults) / 3
	faults = append(faults[:big], append([]func(){func() { bigReq <- bigTxn }}, faults[big:]...)...)
	for i, f := range faults {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("workload: %v", err)
		default:
		}
		if t.Failed() {
			break
		}
		f()
		if !long() || i%50 == 0 {
			t.Logf("step %d/%d: %s (%d faults), workload %d transactions, %d records", i+1, len(faults), e.last, e.faults, w.txns.Load(), w.committed.Load())
		}
		e.ensureRunning()
		e.sleep(100*time.Millisecond, time.Second)
	}
	stopped = true
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("workload: %v", err)
	}
	t.Logf("workload: %d transactions, %d records committed", w.txns.Load(), w.committed.Load())
	e.finish()
}
