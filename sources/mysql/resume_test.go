package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	gomysql "github.com/go-sql-driver/mysql"
)

// runBatches reads like run, but "crashes" after accepting n whole batches, which is
// what the pipeline commits: the committed position is the last record of a batch.
func (h *harness) runBatches(mode connector.Mode, n int) ([]record.Record, error) {
	ctx := testCtx(h.t)
	src, err := Kind{}.Open(ctx, h.params(mode))
	if err != nil {
		return nil, err
	}
	if h.chunk > 0 {
		src.(*Source).chunk = h.chunk
	}
	defer src.Close(ctx)
	var got []record.Record
	batches := 0
	emit := func(ctx context.Context, recs []record.Record) error {
		time.Sleep(h.slow)
		if n >= 0 && batches >= n {
			return errCrash
		}
		batches++
		for _, r := range recs {
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

// rebuild applies records in order: latest position per key, deletes applied. It
// returns each table's rows as "key|col=value ..." lines, sorted.
func rebuild(recs []record.Record) map[string][]string {
	state := map[string]map[string]string{}
	for _, r := range recs {
		tbl := r.Schema.Table
		if state[tbl] == nil {
			state[tbl] = map[string]string{}
		}
		if r.Op == record.OpTruncate {
			state[tbl] = map[string]string{}
			continue
		}
		row := r.Row()
		var key, all []string
		for i, c := range r.Schema.Columns {
			v := fmt.Sprint(row[i])
			if row[i] == nil {
				v = "NULL"
			}
			if c.Key {
				key = append(key, v)
			}
			all = append(all, v)
		}
		k := strings.Join(key, ",")
		if len(key) == 0 {
			k = strings.Join(all, ",")
		}
		if r.Op == record.OpDelete {
			delete(state[tbl], k)
		} else {
			state[tbl][k] = strings.Join(all, "\t")
		}
	}
	out := map[string][]string{}
	for tbl, rows := range state {
		for _, v := range rows {
			out[tbl] = append(out[tbl], v)
		}
		sort.Strings(out[tbl])
	}
	return out
}

// tableRows is the table as the server has it, in rebuild's form.
func tableRows(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, v := range vals {
			if v.Valid {
				s = append(s, v.String)
			} else {
				s = append(s, "NULL")
			}
		}
		out = append(out, strings.Join(s, "\t"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	c, err := gomysql.ParseDSN(mariaServer(t).DSN)
	if err != nil {
		t.Fatal(err)
	}
	c.MultiStatements = true
	conn, err := gomysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// writer changes rows of resumedb.a and resumedb.b at random until stopped.
type writer struct {
	db      *sql.DB
	rnd     *rand.Rand
	nextA   int
	changes int
}

func (w *writer) step(ctx context.Context) error {
	var q string
	switch id := 1 + w.rnd.Intn(w.nextA); w.rnd.Intn(6) {
	case 0:
		w.nextA++
		q = fmt.Sprintf("INSERT INTO resumedb.a VALUES (%d, 'new%d')", w.nextA, w.nextA)
	case 1:
		// Below the keys already read too, so a resume point has something to skip.
		q = fmt.Sprintf("DELETE FROM resumedb.a WHERE id = %d", id)
	case 2:
		q = fmt.Sprintf("UPDATE resumedb.a SET v = CONCAT(v, '+') WHERE id = %d", id)
	case 3:
		q = fmt.Sprintf("INSERT INTO resumedb.b VALUES ('g%02d', %d, 'ins') ON DUPLICATE KEY UPDATE v = 'dup'", w.rnd.Intn(30), 1000+w.rnd.Intn(1000))
	case 4:
		q = fmt.Sprintf("DELETE FROM resumedb.b WHERE g = 'g%02d' AND n = %d", w.rnd.Intn(30), w.rnd.Intn(100))
	default:
		q = fmt.Sprintf("BEGIN; UPDATE resumedb.a SET v = 'tx' WHERE id = %d; UPDATE resumedb.b SET v = 'tx' WHERE g = 'g%02d' AND n < 5; COMMIT", id, w.rnd.Intn(30))
	}
	_, err := w.db.ExecContext(ctx, q)
	w.changes++
	return err
}

// startWriter runs w until the returned stop is called.
func startWriter(t *testing.T, w *writer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var err error
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if e := w.step(ctx); e != nil && ctx.Err() == nil {
				err = e
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		if err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
}

func TestSnapshotInterruptedByCrashResumesWhereItStopped(t *testing.T) {
	db := openDB(t)
	exec(t, `CREATE DATABASE resumedb;
CREATE TABLE resumedb.a (id int PRIMARY KEY, v varchar(40));
CREATE TABLE resumedb.b (g varchar(10) CHARACTER SET latin1, n int, v varchar(40), PRIMARY KEY (g, n));
CREATE TABLE resumedb.c (x int, y varchar(10));
CREATE TABLE resumedb.d (id bigint unsigned PRIMARY KEY)`)
	var b strings.Builder
	b.WriteString("INSERT INTO resumedb.a VALUES ")
	for i := 1; i <= 4000; i++ {
		if i > 1 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "(%d, 'v%d')", i, i)
	}
	b.WriteString("; INSERT INTO resumedb.b VALUES ")
	for i := 0; i < 3000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "('g%02d', %d, 'b%d')", i%30, i/30, i)
	}
	b.WriteString("; INSERT INTO resumedb.c VALUES ")
	for i := 0; i < 300; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "(%d, 'c%d')", i%7, i)
	}
	exec(t, b.String())

	h := newHarness(t, "resume", "resumedb.*")
	h.chunk = 700 // several chunks per table, several batches per chunk
	h.slow = 5 * time.Millisecond
	w := &writer{db: db, rnd: rand.New(rand.NewSource(1)), nextA: 4000}
	stop := startWriter(t, w)
	// Crash after a few batches each time: inside a, across a chunk boundary, inside b.
	crashes, inB := 0, false
	for _, n := range []int{2, 1, 1, 3, 0, 2} {
		_, err := h.runBatches(connector.ModeSync, n)
		if err == nil {
			break
		}
		if !errors.Is(err, errCrash) {
			t.Fatalf("run %d: %v", crashes, err)
		}
		crashes++
		if d, _ := parsePos(h.committed); d.snapshot && !d.done {
			if d.key == nil && d.table != 2 { // table #2, c, has no key: read in one piece
				t.Fatalf("committed batch end %s carries no resume key", describePos(h.committed))
			}
			inB = inB || d.table == 1
		}
		t.Logf("crashed after %s", describePos(h.committed))
	}
	if !inB {
		t.Fatal("no crash landed inside the snapshot's second table (composite key)")
	}
	h.slow = 0
	h.runBatches(connector.ModeSync, -1)
	stop()
	h.runBatches(connector.ModeSync, -1)
	t.Logf("%d crashes, %d concurrent changes, %d records", crashes, w.changes, len(h.got))

	checkUniquePositions(t, h.got)
	readByKey := map[string]int{}
	doneMarkers := 0
	for _, r := range h.got {
		d, _ := parsePos(r.Pos)
		if d.snapshot && d.epoch != 1 {
			t.Fatalf("record at %s: the snapshot was taken again instead of resumed", describePos(r.Pos))
		}
		if d.done {
			doneMarkers++
		}
		if r.Op == record.OpRead && r.Schema.Table != "c" {
			var key []string
			for i, c := range r.Schema.Columns {
				if c.Key {
					key = append(key, fmt.Sprint(r.After[i]))
				}
			}
			readByKey[r.Schema.Table+":"+strings.Join(key, ",")]++
		}
	}
	if doneMarkers != 1 {
		t.Errorf("%d completion markers", doneMarkers)
	}
	for k, n := range readByKey {
		if n > 1 {
			t.Errorf("%s read %d times by the snapshot", k, n)
		}
	}
	got := rebuild(h.got)
	for _, tbl := range []string{"a", "b", "c", "d"} {
		want := tableRows(t, db, "resumedb."+tbl)
		if strings.Join(got[tbl], "\n") != strings.Join(want, "\n") {
			t.Errorf("table %s: rebuilt %d rows, server has %d", tbl, len(got[tbl]), len(want))
			diff(t, got[tbl], want)
		}
	}
}

func diff(t *testing.T, got, want []string) {
	t.Helper()
	in := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, v := range s {
			m[v] = true
		}
		return m
	}
	g, w := in(got), in(want)
	n := 0
	for _, v := range want {
		if !g[v] && n < 10 {
			t.Errorf("  missing: %s", v)
			n++
		}
	}
	for _, v := range got {
		if !w[v] && n < 20 {
			t.Errorf("  extra:   %s", v)
			n++
		}
	}
}

func TestSnapshotCommittedMidBatchRereadsTheChunkTableSafely(t *testing.T) {
	db := openDB(t)
	exec(t, "CREATE DATABASE midbatchdb; CREATE TABLE midbatchdb.t (id int PRIMARY KEY, v int)")
	var b strings.Builder
	b.WriteString("INSERT INTO midbatchdb.t VALUES ")
	for i := 1; i <= 2500; i++ {
		if i > 1 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "(%d, %d)", i, i)
	}
	exec(t, b.String())
	h := newHarness(t, "midbatch", "midbatchdb.t")
	// A commit in the middle of a batch carries no key: the table is read again
	// under higher chunk numbers, so nothing is lost and no position repeats.
	if _, err := h.run(connector.ModeSync, 1500); !errors.Is(err, errCrash) {
		t.Fatalf("first run: %v", err)
	}
	exec(t, "DELETE FROM midbatchdb.t WHERE id = 10; UPDATE midbatchdb.t SET v = 0 WHERE id = 2000")
	h.sync()
	checkUniquePositions(t, h.got)
	got := rebuild(h.got)["t"]
	if want := tableRows(t, db, "midbatchdb.t"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rebuilt %d rows, server has %d", len(got), len(want))
		diff(t, got, want)
	}
}

func TestEmptySnapshotCompletesSoLaterChangesStream(t *testing.T) {
	exec(t, "CREATE DATABASE emptydb; CREATE TABLE emptydb.t (id int PRIMARY KEY, v varchar(5))")
	h := newHarness(t, "empty", "emptydb.t")
	if recs := h.sync(); len(recs) != 0 {
		t.Fatalf("empty table gave %d records", len(recs))
	}
	if h.committed != nil {
		t.Fatalf("committed %s", describePos(h.committed))
	}
	exec(t, "INSERT INTO emptydb.t VALUES (1, 'one'), (2, 'two'); UPDATE emptydb.t SET v = 'uno' WHERE id = 1; DELETE FROM emptydb.t WHERE id = 2")
	// A run that reads the changes but crashes before committing any: still nothing
	// committed, so the next run must again stream from the snapshot's point.
	if _, err := h.run(connector.ModeSync, 0); !errors.Is(err, errCrash) {
		t.Fatalf("crashing run: %v", err)
	}
	recs := h.sync()
	if ops(recs) != "ccud" {
		t.Fatalf("after an empty snapshot: ops %q, want ccud (changes, not a new snapshot)", ops(recs))
	}
	// Once a stream position is committed the saved "complete" no longer stands in
	// for a position: a reset of the offset takes a new snapshot.
	h.committed = nil
	recs = h.sync()
	if ops(recs) != "r" || vals(recs[0])["v"] != "uno" {
		t.Fatalf("after reset: ops %q", ops(recs))
	}
}

func TestResumeTakesTheSnapshotAgainWhenATableChangedShape(t *testing.T) {
	exec(t, `CREATE DATABASE shapedb; CREATE TABLE shapedb.a (id int PRIMARY KEY); CREATE TABLE shapedb.b (id int PRIMARY KEY, v int);
INSERT INTO shapedb.a SELECT seq FROM shapedb.seq_1_to_2500; INSERT INTO shapedb.b SELECT seq, seq FROM shapedb.seq_1_to_10`)
	h := newHarness(t, "shape", "shapedb.*")
	if _, err := h.runBatches(connector.ModeSync, 1); !errors.Is(err, errCrash) {
		t.Fatalf("first run: %v", err)
	}
	exec(t, "ALTER TABLE shapedb.b ADD COLUMN w int")
	recs, err := h.runBatches(connector.ModeSync, -1)
	if err != nil {
		t.Fatal(err)
	}
	checkUniquePositions(t, h.got)
	if d, _ := parsePos(recs[0].Pos); d.epoch != 2 || d.table != 0 || d.row != 1 {
		t.Errorf("after the ALTER the snapshot should start again at epoch 2, got %s", describePos(recs[0].Pos))
	}
	if last := recs[len(recs)-1]; last.Schema.Index("w") < 0 {
		t.Errorf("table b read without its new column: %s %v at %s", last.Schema.Table, last.Schema.Columns, describePos(last.Pos))
	}
}

func TestChunkedSnapshotPagesThroughEveryKeyType(t *testing.T) {
	exec(t, `CREATE DATABASE pagedb;
CREATE TABLE pagedb.ubig (k bigint unsigned PRIMARY KEY);
CREATE TABLE pagedb.dec (k decimal(30,10) PRIMARY KEY);
CREATE TABLE pagedb.bin (k varbinary(8) PRIMARY KEY);
CREATE TABLE pagedb.dt (k datetime(6) PRIMARY KEY);
CREATE TABLE pagedb.ts (d date, k timestamp(3), PRIMARY KEY (d, k));
CREATE TABLE pagedb.txt (k varchar(10) CHARACTER SET latin1 COLLATE latin1_swedish_ci PRIMARY KEY, n int);
CREATE TABLE pagedb.en (k enum('z','a','m') PRIMARY KEY);
INSERT INTO pagedb.ubig SELECT 18446744073709551615 - seq * 3 FROM pagedb.seq_0_to_59;
INSERT INTO pagedb.dec SELECT (CAST(seq AS SIGNED) - 30) / 7 FROM pagedb.seq_0_to_59;
INSERT INTO pagedb.bin SELECT UNHEX(LPAD(HEX(seq * 4099), 6, '0')) FROM pagedb.seq_0_to_59;
INSERT INTO pagedb.dt SELECT '2024-01-01 00:00:00' + INTERVAL seq * 1001 MICROSECOND FROM pagedb.seq_0_to_59;
INSERT INTO pagedb.ts SELECT '2024-01-01' + INTERVAL seq % 3 DAY, '2024-06-01 00:00:00' + INTERVAL seq SECOND FROM pagedb.seq_0_to_59;
INSERT INTO pagedb.txt SELECT CONCAT(ELT(1 + seq % 6, 'a', 'B', 'é', 'Z', 'x', 'ä'), seq), seq FROM pagedb.seq_0_to_59;
INSERT INTO pagedb.en VALUES ('z'), ('a'), ('m')`)
	db := openDB(t)
	h := newHarness(t, "paging", "pagedb.*")
	h.chunk = 7
	recs := h.sync()
	checkUniquePositions(t, recs)
	got := rebuild(recs)
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.Schema.Table+" "+fmt.Sprint(r.After)]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s read %d times", k, n)
		}
	}
	for _, tbl := range []string{"ubig", "dec", "bin", "dt", "ts", "txt", "en"} {
		want := tableRows(t, db, "pagedb."+tbl)
		if len(got[tbl]) != len(want) {
			t.Errorf("table %s: %d rows read, server has %d", tbl, len(got[tbl]), len(want))
		}
	}
	chunks := map[string]uint32{}
	for _, r := range recs {
		d, _ := parsePos(r.Pos)
		chunks[r.Schema.Table] = max(chunks[r.Schema.Table], d.chunk)
	}
	if chunks["ubig"] != 8 || chunks["en"] != 0 {
		t.Errorf("chunks per table: %v (want 9 chunks of 7 for 60 rows; an ENUM key read in one piece)", chunks)
	}
}
