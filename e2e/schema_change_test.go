package e2e

import (
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// TestAlterTableAddColumnMidStream adds a column while `connectd run` streams: rows
// before the change stay in files of the old schema, rows after it go to a new file
// with the new column, and DuckDB reads the table across both (union_by_name).
func TestAlterTableAddColumnMidStream(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_alter")
	mustExec(t, conn, `CREATE TABLE public.orders (id int PRIMARY KEY, amount numeric(10,2) NOT NULL);
INSERT INTO public.orders VALUES (1, 10.00), (2, 20.50), (3, 30.99)`)
	p := newPipe(t, "alter_add_column", dsn, false, "public.orders")
	p.writeConfig(t)
	db := lakedb.DuckDB(t)
	dir := lakeTable(p.lakeDir, "public", "orders")
	d := startRun(t, p.config)
	count := func(n int) func() (bool, string) {
		return func() (bool, string) {
			c := lakeCount(t, db, dir)
			return c >= n, fmt.Sprintf("%d rows in the lake", c)
		}
	}
	waitFor(t, 60*time.Second, d, "the snapshot's 3 rows in the lake", count(3))

	// No wait between the old-schema rows and the DDL: the change must split files even
	// inside one flush window.
	mustExec(t, conn, "INSERT INTO public.orders VALUES (4, 40.00), (5, 50.00)")
	mustExec(t, conn, "ALTER TABLE public.orders ADD COLUMN note text")
	mustExec(t, conn, "INSERT INTO public.orders VALUES (6, 60.00, 'new')")
	mustExec(t, conn, "UPDATE public.orders SET note = 'updated', amount = 11.11 WHERE id = 1")
	waitFor(t, 60*time.Second, d, "7 rows in the lake", count(7))
	// SIGINT (Ctrl-C) is a clean stop just like SIGTERM.
	if r := d.stop(t, syscall.SIGINT); r.code != 0 {
		t.Fatalf("connectd run after SIGINT: want exit 0, got %s", r)
	}

	// Every file has one schema: with note or without.
	hasNote := map[string]bool{}
	for _, f := range parquetFiles(t, dir) {
		cols := queryRows(t, db, "SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet('"+strings.ReplaceAll(f, "'", "''")+"'))")
		for _, c := range cols {
			if c.val("column_name") == "note" {
				hasNote[f] = true
			}
		}
	}

	rows := readTable(t, db, dir, "CAST(id AS VARCHAR) AS id", "CAST(amount AS VARCHAR) AS amount", "note")
	checkPositions(t, rows)
	var seq []string
	for _, r := range rows {
		seq = append(seq, r.val("_op")+r.val("id"))
		// Rows written before the ALTER come from files without the column, the others
		// from files with it.
		after := r.val("_op") == "u" || r.val("id") == "6"
		if got := hasNote[r.val("filename")]; got != after {
			t.Errorf("%s of id %s is in %s, which has the note column: %t, want %t", r.val("_op"), r.val("id"), r.val("filename"), got, after)
		}
	}
	if len(seq) >= 3 {
		sort.Strings(seq[:3]) // the snapshot's order within a table is the heap's
	}
	if got, want := strings.Join(seq, " "), "r1 r2 r3 c4 c5 c6 u1"; got != want {
		t.Errorf("lake records %q, want %q", got, want)
	}
	var withNote, without int
	for _, v := range hasNote {
		if v {
			withNote++
		}
	}
	without = len(parquetFiles(t, dir)) - withNote
	if withNote == 0 || without == 0 {
		t.Errorf("want files of both schemas, have %d with note and %d without", withNote, without)
	}
	compareTable(t, rebuild(rows, "id"),
		pgRows(t, conn, "SELECT id::text AS id, amount::text AS amount, note FROM public.orders"), "id", "amount", "note")
}
