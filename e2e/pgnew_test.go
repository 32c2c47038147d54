package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// Tables created while connectd runs, and partitioned tables (docs/reliability.md,
// "Ordinary operations: no silent loss").

// lineCols are the columns compared between a line_* table and the lake.
var lineCols = []string{"qty", "note", "amount", "flag"}

const lineDDL = `(id int PRIMARY KEY, qty int NOT NULL, note text, amount numeric(10,2), flag bool)`

// lineRow is an INSERT's VALUES tuple for id: a note with a tab, a newline and a
// backslash, and NULLs, so that the chunk encoding is exercised.
func lineRow(id, qty int) string {
	note := fmt.Sprintf("E'n%d\\t\\\\x\\ny'", id)
	if id%7 == 0 {
		note = "NULL"
	}
	flag := map[int]string{0: "true", 1: "false", 2: "NULL"}[id%3]
	return fmt.Sprintf("(%d, %d, %s, %d.%02d, %s)", id, qty, note, id, id%100, flag)
}

// insertLines inserts ids [from, to) in one statement, with the values lineRow gives.
func insertLines(t *testing.T, conn *pgx.Conn, table string, from, to int) {
	t.Helper()
	mustExec(t, conn, fmt.Sprintf(`INSERT INTO %s SELECT g, 1,
  CASE WHEN g %% 7 = 0 THEN NULL ELSE 'n' || g || E'\t\\x\ny' END,
  g + (g %% 100) / 100.0,
  CASE g %% 3 WHEN 0 THEN true WHEN 1 THEN false END
FROM generate_series(%d, %d) g`, table, from, to-1))
}

// churn keeps changing a table from its own connection until stop is closed:
// updates, deletes and inserts of random ids below max (and new ones above it).
// It returns how many statements it ran and the first error.
func churn(dsn, table string, max int, seed uint64, stop <-chan struct{}) func() (int, error) {
	var wg sync.WaitGroup
	var n int
	var err error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		conn, cerr := pgx.Connect(ctx, dsn)
		if cerr != nil {
			err = cerr
			return
		}
		defer conn.Close(ctx)
		rng := rand.New(rand.NewPCG(seed, 7))
		next := max
		for {
			select {
			case <-stop:
				return
			default:
			}
			id := 1 + rng.IntN(max)
			var q string
			switch rng.IntN(10) {
			case 0, 1:
				q = fmt.Sprintf("DELETE FROM %s WHERE id = %d", table, id)
			case 2, 3:
				next++
				q = "INSERT INTO " + table + " VALUES " + lineRow(next, 2)
			case 4:
				q = fmt.Sprintf("INSERT INTO %s VALUES %s ON CONFLICT (id) DO UPDATE SET qty = %s.qty + 100", table, lineRow(id, 3), table)
			default:
				q = fmt.Sprintf("UPDATE %s SET qty = qty + 1, note = 'u%d' WHERE id = %d", table, n, id)
			}
			if _, e := conn.Exec(ctx, q); e != nil {
				err = fmt.Errorf("%s: %w", q, e)
				return
			}
			n++
			time.Sleep(time.Millisecond)
		}
	}()
	return func() (int, error) {
		wg.Wait()
		return n, err
	}
}

// lakeDiff rebuilds a table from the lake and counts how its rows differ from the
// source's (missing, extra or different rows); "" when they are equal.
func lakeDiff(t *testing.T, db *sql.DB, dir string, conn *pgx.Conn, table string) string {
	t.Helper()
	if len(parquetFiles(t, dir)) == 0 {
		return "no files yet"
	}
	lake := rebuild(readTable(t, db, dir, lineLakeCols...), "id")
	src := pgRows(t, conn, "SELECT "+lineSourceCols+" FROM "+table)
	diff := 0
	for _, w := range src {
		g, ok := lake[w.val("id")]
		if !ok {
			diff++
			continue
		}
		for _, c := range lineCols {
			if g.str(c) != w.str(c) {
				diff++
				break
			}
		}
	}
	if extra := len(lake) - len(src); extra > 0 {
		diff += extra
	}
	if diff == 0 && len(lake) == len(src) {
		return ""
	}
	return fmt.Sprintf("%d of %d rows differ (lake has %d)", diff, len(src), len(lake))
}

var lineLakeCols = []string{"CAST(id AS VARCHAR) AS id", "CAST(qty AS VARCHAR) AS qty", "note",
	"CAST(amount AS VARCHAR) AS amount", "CAST(flag AS VARCHAR) AS flag"}

const lineSourceCols = "id::text AS id, qty::text AS qty, note, amount::text AS amount, flag::text AS flag"

// reconcileLines checks a line_* table of the lake against the source: positions
// unique and increasing, the latest _pos per key equal to the source row.
func reconcileLines(t *testing.T, db *sql.DB, dir string, conn *pgx.Conn, table string) []row {
	t.Helper()
	rows := readTable(t, db, dir, lineLakeCols...)
	checkPositions(t, rows)
	compareTable(t, rebuild(rows, "id"), pgRows(t, conn, "SELECT "+lineSourceCols+" FROM "+table), "id", lineCols...)
	return rows
}

// opCounts counts lake rows by _op.
func opCounts(rows []row) map[string]int {
	n := map[string]int{}
	for _, r := range rows {
		n[r.val("_op")]++
	}
	return n
}

// TestTableCreatedWhileRunningIsSnapshottedWhileOthersStream: a public.line_* table
// is created while `connectd run` streams public.orders, with rows inserted in the
// CREATE's transaction, right after it, and all along its snapshot (updates,
// deletes, inserts hitting the chunks' windows). The table is picked up without a
// restart and the lake, rebuilt by latest _pos, equals both tables.
func TestTableCreatedWhileRunningIsSnapshottedWhileOthersStream(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_newtable")
	mustExec(t, conn, `CREATE TABLE public.orders `+lineDDL)
	insertLines(t, conn, "public.orders", 1, 200)

	p := newPipe(t, "newtable", dsn, false, "public.orders", "public.line_*")
	p.extra = "      snapshot_chunk: 40\n      discovery: 300ms\n"
	p.writeConfig(t)
	db := lakedb.DuckDB(t)
	orders := lakeTable(p.lakeDir, "public", "orders")
	lines := lakeTable(p.lakeDir, "public", "line_1")
	d := startRun(t, p.config)
	waitFor(t, 60*time.Second, d, "the orders snapshot in the lake", func() (bool, string) {
		n := lakeCount(t, db, orders)
		return n >= 199, fmt.Sprintf("%d rows", n)
	})

	stop := make(chan struct{})
	ordersDone := churn(dsn, "public.orders", 200, 1, stop)
	mustExec(t, conn, "BEGIN; CREATE TABLE public.line_1 "+lineDDL+"; "+
		"INSERT INTO public.line_1 SELECT g, 1, 'in create', g, g % 2 = 0 FROM generate_series(1, 300) g; COMMIT")
	insertLines(t, conn, "public.line_1", 301, 3000)
	linesDone := churn(dsn, "public.line_1", 3000, 2, stop)
	waitFor(t, 120*time.Second, d, "the snapshot of public.line_1 to complete", func() (bool, string) {
		return strings.Contains(d.stderr.String(), "table snapshot while streaming complete"), "not yet"
	})
	time.Sleep(500 * time.Millisecond) // changes after the snapshot, too
	close(stop)
	for name, done := range map[string]func() (int, error){"orders": ordersDone, "line_1": linesDone} {
		n, err := done()
		if err != nil {
			t.Fatalf("writer on %s: %v", name, err)
		}
		t.Logf("%d statements on %s during the test", n, name)
	}
	for _, tb := range []struct{ dir, name string }{{orders, "public.orders"}, {lines, "public.line_1"}} {
		waitFor(t, 60*time.Second, d, "the lake to equal "+tb.name, func() (bool, string) {
			diff := lakeDiff(t, db, tb.dir, conn, tb.name)
			return diff == "", diff
		})
	}
	d.stopClean(t)

	reconcileLines(t, db, orders, conn, "public.orders")
	rows := reconcileLines(t, db, lines, conn, "public.line_1")
	ops := opCounts(rows)
	t.Logf("public.line_1 in the lake: %v", ops)
	if ops["r"] == 0 || ops["u"] == 0 || ops["d"] == 0 {
		t.Errorf("want snapshot reads and streamed updates and deletes of public.line_1, got %v", ops)
	}
}

// TestTableCreatedWhileRunningSurvivesKillInItsSnapshot: as above, with connectd
// killed (SIGKILL) in the middle of the new table's snapshot. The restart continues
// that snapshot at the chunk after the last one written into the WAL (the chunks
// between the slot's position and the crash are replayed from the WAL itself), and
// the lake equals the source.
func TestTableCreatedWhileRunningSurvivesKillInItsSnapshot(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_newtable_kill")
	mustExec(t, conn, `CREATE TABLE public.orders `+lineDDL)
	insertLines(t, conn, "public.orders", 1, 100)

	p := newPipe(t, "newtable_kill", dsn, false, "public.orders", "public.line_*")
	p.extra = "      snapshot_chunk: 10\n      discovery: 300ms\n"
	p.flush = "{rows: 100000, bytes: 16MiB, interval: 200ms}"
	p.writeConfig(t)
	db := lakedb.DuckDB(t)
	orders := lakeTable(p.lakeDir, "public", "orders")
	lines := lakeTable(p.lakeDir, "public", "line_1")
	d := startRun(t, p.config)
	waitFor(t, 60*time.Second, d, "the orders snapshot in the lake", func() (bool, string) {
		n := lakeCount(t, db, orders)
		return n >= 99, fmt.Sprintf("%d rows", n)
	})

	stop := make(chan struct{})
	ordersDone := churn(dsn, "public.orders", 100, 3, stop)
	// One transaction: the table has its rows when it is discovered.
	mustExec(t, conn, "BEGIN; CREATE TABLE public.line_1 "+lineDDL)
	insertLines(t, conn, "public.line_1", 1, 50000)
	mustExec(t, conn, "COMMIT")
	linesDone := churn(dsn, "public.line_1", 50000, 4, stop)
	waitFor(t, 120*time.Second, d, "part of the snapshot of public.line_1 in the lake", func() (bool, string) {
		n := lakeOpCount(t, db, lines, "r")
		return n >= 200, fmt.Sprintf("%d snapshot rows", n)
	})
	if strings.Contains(d.stderr.String(), "table snapshot while streaming complete") {
		t.Fatal("the snapshot of public.line_1 completed before the kill; the test needs a larger table\n" + tail(d.stderr.String(), 30))
	}
	d.stop(t, syscall.SIGKILL)

	d = startRun(t, p.config)
	waitFor(t, 120*time.Second, d, "the snapshot of public.line_1 to complete after the restart", func() (bool, string) {
		return strings.Contains(d.stderr.String(), "table snapshot while streaming complete"), "not yet"
	})
	if !regexp.MustCompile(`"the snapshot of a table added later continues".*"chunk":[1-9]`).MatchString(d.stderr.String()) {
		t.Errorf("the restart did not continue the interrupted snapshot after its first chunk:\n%s", tail(d.stderr.String(), 40))
	}
	close(stop)
	for name, done := range map[string]func() (int, error){"orders": ordersDone, "line_1": linesDone} {
		if _, err := done(); err != nil {
			t.Fatalf("writer on %s: %v", name, err)
		}
	}
	for _, tb := range []struct{ dir, name string }{{orders, "public.orders"}, {lines, "public.line_1"}} {
		waitFor(t, 60*time.Second, d, "the lake to equal "+tb.name, func() (bool, string) {
			diff := lakeDiff(t, db, tb.dir, conn, tb.name)
			return diff == "", diff
		})
	}
	d.stopClean(t)
	reconcileLines(t, db, orders, conn, "public.orders")
	rows := reconcileLines(t, db, lines, conn, "public.line_1")
	t.Logf("public.line_1 in the lake: %v", opCounts(rows))
}

// TestTableCreatedBetweenSyncsIsPickedUp: `connectd sync` runs twice; a matching
// table created between them (with rows) is snapshotted by the second run, which
// exits only once it is complete.
func TestTableCreatedBetweenSyncsIsPickedUp(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_newtable_sync")
	mustExec(t, conn, `CREATE TABLE public.orders `+lineDDL)
	insertLines(t, conn, "public.orders", 1, 50)
	p := newPipe(t, "newtable_sync", dsn, false, "public.orders", "public.line_*")
	p.extra = "      snapshot_chunk: 25\n"
	p.writeConfig(t)
	p.sync(t)

	mustExec(t, conn, "CREATE TABLE public.line_2 "+lineDDL)
	insertLines(t, conn, "public.line_2", 1, 500)
	mustExec(t, conn, "UPDATE public.line_2 SET qty = 5 WHERE id % 10 = 0; DELETE FROM public.line_2 WHERE id % 13 = 0; UPDATE public.orders SET qty = 9 WHERE id < 5")
	p.sync(t)
	mustExec(t, conn, "UPDATE public.line_2 SET qty = 6 WHERE id % 11 = 0; INSERT INTO public.line_2 VALUES "+lineRow(900, 1))
	p.sync(t)

	db := lakedb.DuckDB(t)
	reconcileLines(t, db, lakeTable(p.lakeDir, "public", "orders"), conn, "public.orders")
	rows := reconcileLines(t, db, lakeTable(p.lakeDir, "public", "line_2"), conn, "public.line_2")
	if ops := opCounts(rows); ops["r"] == 0 {
		t.Errorf("want the rows of public.line_2 read by a snapshot, got %v", ops)
	}
}

// lakeOpCount counts the rows of a table in the lake with the given _op.
func lakeOpCount(t *testing.T, db *sql.DB, dir, op string) int {
	t.Helper()
	if len(parquetFiles(t, dir)) == 0 {
		return 0
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM "+lakedb.ParquetTree(dir)+" WHERE _op = ?", op).Scan(&n); err != nil {
		t.Fatalf("duckdb: count %s: %v", dir, err)
	}
	return n
}

// TestPartitionedTableArrivesUnderItsRootName: a partitioned table with rows routed to
// several partitions, rows moved between partitions, and a partition attached while
// connectd runs, delivered under the partitioned table's name, both through
// connectd's publication (publish_via_partition_root) and through a publication the
// user made without that option (each partition's changes mapped to the root).
func TestPartitionedTableArrivesUnderItsRootName(t *testing.T) {
	for _, userPub := range []bool{false, true} {
		t.Run(fmt.Sprintf("user_publication=%t", userPub), func(t *testing.T) {
			dsn, conn := newDatabase(t, "e2e_partitions")
			mustExec(t, conn, `CREATE TABLE public.events (id int, region text, qty int NOT NULL, note text, amount numeric(10,2), flag bool, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE public.events_eu PARTITION OF public.events FOR VALUES IN ('eu');
CREATE TABLE public.events_us PARTITION OF public.events FOR VALUES IN ('us');
CREATE TABLE public.events_other PARTITION OF public.events DEFAULT;
INSERT INTO public.events SELECT g, (ARRAY['eu','us','apac'])[1 + g % 3], 1, 'n' || g, g, true FROM generate_series(1, 90) g`)
			p := newPipe(t, "partitions", dsn, false, "public.events*")
			if userPub {
				mustExec(t, conn, "CREATE PUBLICATION userpub_"+p.name+" FOR TABLE public.events")
				p.extra = "      publication: userpub_" + p.name + "\n"
			}
			p.writeConfig(t)
			db := lakedb.DuckDB(t)
			dir := lakeTable(p.lakeDir, "public", "events")
			d := startRun(t, p.config)
			waitFor(t, 60*time.Second, d, "the snapshot in the lake", func() (bool, string) {
				n := lakeCount(t, db, dir)
				return n >= 90, fmt.Sprintf("%d rows", n)
			})
			mustExec(t, conn, `INSERT INTO public.events SELECT g, (ARRAY['eu','us','apac'])[1 + g % 3], 2, 'c' || g, g, false FROM generate_series(91, 150) g;
UPDATE public.events SET qty = qty + 10 WHERE id % 4 = 0;
UPDATE public.events SET region = 'us' WHERE region = 'eu' AND id % 5 = 0;
DELETE FROM public.events WHERE id % 7 = 0;
CREATE TABLE public.events_asia PARTITION OF public.events FOR VALUES IN ('asia');
INSERT INTO public.events SELECT g, 'asia', 3, 'a' || g, g, NULL FROM generate_series(200, 230) g;
UPDATE public.events SET note = 'late' WHERE region = 'asia' AND id % 2 = 0`)
			src := "SELECT id::text || '/' || region AS k, qty::text AS qty, note, amount::text AS amount, flag::text AS flag FROM public.events"
			cols := []string{"CAST(id AS VARCHAR) || '/' || region AS k", "CAST(qty AS VARCHAR) AS qty", "note", "CAST(amount AS VARCHAR) AS amount", "CAST(flag AS VARCHAR) AS flag"}
			waitFor(t, 60*time.Second, d, "the lake to equal public.events", func() (bool, string) {
				lake := rebuild(readTable(t, db, dir, cols...), "k")
				want := pgRows(t, conn, src)
				if len(lake) != len(want) {
					return false, fmt.Sprintf("lake %d rows, source %d", len(lake), len(want))
				}
				for _, w := range want {
					if g, ok := lake[w.val("k")]; !ok || g.str("qty") != w.str("qty") || g.str("note") != w.str("note") {
						return false, "row " + w.val("k") + " differs"
					}
				}
				return true, ""
			})
			d.stopClean(t)
			rows := readTable(t, db, dir, cols...)
			checkPositions(t, rows)
			compareTable(t, rebuild(rows, "k"), pgRows(t, conn, src), "k", "qty", "note", "amount", "flag")
			for _, leaf := range []string{"events_eu", "events_us", "events_other", "events_asia"} {
				if files := parquetFiles(t, lakeTable(p.lakeDir, "public", leaf)); len(files) > 0 {
					t.Errorf("partition %s has files of its own in the lake (delivered twice or under the wrong name): %v", leaf, files)
				}
			}
		})
	}
}
