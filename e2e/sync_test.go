package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// TestSyncExitsWhenCaughtUp: sync delivers the snapshot, then every change committed
// before it started, and exits 0 each time, also on an idle database.
func TestSyncExitsWhenCaughtUp(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_sync")
	mustExec(t, conn, `CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL, qty int);
INSERT INTO public.items SELECT g, 'item ' || g, g * 10 FROM generate_series(1, 50) g`)
	p := newPipe(t, "sync_caught_up", dsn, false, "public.items")
	p.writeConfig(t)
	db := lakedb.DuckDB(t)
	dir := lakeTable(p.lakeDir, "public", "items")
	read := func() []row {
		return readTable(t, db, dir, "CAST(id AS VARCHAR) AS id", "name", "CAST(qty AS VARCHAR) AS qty")
	}
	source := func() []row {
		return pgRows(t, conn, "SELECT id::text AS id, name, qty::text AS qty FROM public.items")
	}

	var before, after time.Time
	if err := conn.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&before); err != nil {
		t.Fatal(err)
	}
	p.sync(t)
	if err := conn.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&after); err != nil {
		t.Fatal(err)
	}
	rows := read()
	if len(rows) != 50 {
		t.Fatalf("after the first sync the lake has %d rows, want the 50 of the snapshot", len(rows))
	}
	for _, r := range rows {
		if r.val("_op") != "r" {
			t.Errorf("snapshot row %s: _op %s, want r", r.val("id"), r.str("_op"))
		}
		// One consistent point, taken while the sync ran (server clock).
		if r.val("_commit_us") != rows[0].val("_commit_us") {
			t.Errorf("snapshot rows carry different _commit_ts: %s and %s", r.val("_commit_us"), rows[0].val("_commit_us"))
		}
	}
	if us, err := strconv.ParseInt(rows[0].val("_commit_us"), 10, 64); err != nil {
		t.Errorf("_commit_ts %s: %v", rows[0].str("_commit_us"), err)
	} else if ct := time.UnixMicro(us); ct.Before(before.Truncate(time.Microsecond)) || ct.After(after) {
		t.Errorf("snapshot _commit_ts %s is not between the start (%s) and the end (%s) of the sync that took it",
			ct.UTC().Format(time.RFC3339Nano), before.UTC().Format(time.RFC3339Nano), after.UTC().Format(time.RFC3339Nano))
	}
	checkPositions(t, rows)
	compareTable(t, rebuild(rows, "id"), source(), "id", "name", "qty")

	mustExec(t, conn, `INSERT INTO public.items SELECT g, 'item ' || g, NULL FROM generate_series(51, 70) g`)
	mustExec(t, conn, `UPDATE public.items SET qty = -qty, name = name || ' (changed)' WHERE id BETWEEN 10 AND 14`)
	mustExec(t, conn, `DELETE FROM public.items WHERE id IN (1, 2, 60)`)
	p.sync(t)
	rows = read()
	ops := map[string]int{}
	for _, r := range rows {
		ops[r.val("_op")]++
	}
	want := map[string]int{"r": 50, "c": 20, "u": 5, "d": 3}
	for op, n := range want {
		if ops[op] != n {
			t.Errorf("after the second sync the lake has %d %q rows, want %d (all ops: %v)", ops[op], op, n, ops)
		}
	}
	checkPositions(t, rows)
	compareTable(t, rebuild(rows, "id"), source(), "id", "name", "qty")

	// Nothing happened since: sync must still see it is caught up and leave the lake as is.
	had := len(rows)
	p.sync(t)
	if n := lakeCount(t, db, dir); n != had {
		t.Errorf("a sync on an idle database changed the lake from %d to %d rows", had, n)
	}
}

// TestEmptySnapshotThenChangesStream: a sync of an empty table completes the snapshot,
// so the changes made afterwards arrive as changes (c, u, d), not folded into a new
// snapshot that would lose the deleted row and the update.
func TestEmptySnapshotThenChangesStream(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_empty_snap")
	mustExec(t, conn, `CREATE TABLE public.items (id int PRIMARY KEY, name text)`)
	p := newPipe(t, "empty_snapshot", dsn, false, "public.items")
	p.writeConfig(t)
	p.sync(t)
	mustExec(t, conn, "INSERT INTO public.items VALUES (1, 'one'), (2, 'two')")
	mustExec(t, conn, "UPDATE public.items SET name = 'uno' WHERE id = 1")
	mustExec(t, conn, "DELETE FROM public.items WHERE id = 2")
	p.sync(t)

	db := lakedb.DuckDB(t)
	rows := readTable(t, db, lakeTable(p.lakeDir, "public", "items"), "CAST(id AS VARCHAR) AS id", "name")
	checkPositions(t, rows)
	var got []string
	for _, r := range rows {
		got = append(got, r.val("_op")+r.val("id"))
	}
	if g, want := strings.Join(got, " "), "c1 c2 u1 d2"; g != want {
		t.Errorf("lake records %q, want %q:\n%s", g, want, describeRows(rows))
	}
}
