package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// sourceTx is what the test knows of one committed source transaction.
type sourceTx struct {
	xid           string
	before, after time.Time // server clock just before BEGIN and just after COMMIT
}

// inTx runs statements in one transaction and returns its xid and the server-clock
// interval its commit happened in.
func inTx(t *testing.T, conn *pgx.Conn, stmts ...string) sourceTx {
	t.Helper()
	ctx := context.Background()
	var tx sourceTx
	if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&tx.before); err != nil {
		t.Fatal(err)
	}
	err := pgx.BeginFunc(ctx, conn, func(q pgx.Tx) error {
		for _, s := range stmts {
			if _, err := q.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return q.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&tx.xid)
	})
	if err != nil {
		t.Fatalf("transaction %v: %v", stmts, err)
	}
	if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&tx.after); err != nil {
		t.Fatal(err)
	}
	return tx
}

// TestChangesStreamInOrder runs `connectd run` while inserts, updates, deletes, a
// key-changing update, an update leaving a TOASTed column out and a truncate happen,
// and checks that the lake holds exactly that sequence of records, in _pos order.
func TestChangesStreamInOrder(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_stream")
	mustExec(t, conn, `CREATE TABLE public.events (id int PRIMARY KEY, v text, big text);
ALTER TABLE public.events ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO public.events VALUES (0, 'zero', NULL);
INSERT INTO public.events VALUES (9, 'nine', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 300) g))`)
	var big string
	if err := conn.QueryRow(context.Background(), "SELECT big FROM public.events WHERE id = 9").Scan(&big); err != nil {
		t.Fatal(err)
	}

	p := newPipe(t, "stream_order", dsn, false, "public.events")
	p.writeConfig(t)
	db := lakedb.DuckDB(t)
	dir := lakeTable(p.lakeDir, "public", "events")
	d := startRun(t, p.config)
	count := func(n int) func() (bool, string) {
		return func() (bool, string) {
			c := lakeCount(t, db, dir)
			return c >= n, fmt.Sprintf("%d rows in the lake", c)
		}
	}
	waitFor(t, 60*time.Second, d, "the snapshot's 2 rows in the lake", count(2))

	txs := []sourceTx{
		inTx(t, conn, "INSERT INTO public.events (id, v) VALUES (1, 'a'), (2, 'b')"),
		inTx(t, conn, "UPDATE public.events SET v = 'b2' WHERE id = 2"),
		inTx(t, conn, "DELETE FROM public.events WHERE id = 1"),
		inTx(t, conn, "UPDATE public.events SET id = 3 WHERE id = 2"),
		inTx(t, conn, "UPDATE public.events SET v = 'nine!' WHERE id = 9"),
		inTx(t, conn, "TRUNCATE public.events"),
		inTx(t, conn, "INSERT INTO public.events (id, v) VALUES (4, 'd')"),
	}
	// op, id, v, big, _unchanged, index of the transaction; "*" accepts anything
	// (a delete must carry the key; the rest of its before image is optional).
	type want struct {
		op, id, v, big, unchanged string
		tx                        int
	}
	wants := []want{
		{"c", "1", "a", "NULL", "NULL", 0},
		{"c", "2", "b", "NULL", "NULL", 0},
		{"u", "2", "b2", "NULL", "NULL", 1},
		{"d", "1", "*", "*", "*", 2},
		{"d", "2", "*", "*", "*", 3},
		{"c", "3", "b2", "NULL", "NULL", 3},
		{"u", "9", "nine!", "NULL", `["big"]`, 4},
		{"t", "NULL", "NULL", "NULL", "*", 5},
		{"c", "4", "d", "NULL", "NULL", 6},
	}
	waitFor(t, 60*time.Second, d, fmt.Sprintf("%d rows in the lake", 2+len(wants)), count(2+len(wants)))
	d.stopClean(t)

	rows := readTable(t, db, dir, "CAST(id AS VARCHAR) AS id", "v", "big")
	checkPositions(t, rows)
	if len(rows) != 2+len(wants) {
		t.Fatalf("lake has %d rows, want %d:\n%s", len(rows), 2+len(wants), describeRows(rows))
	}
	snap := map[string]row{}
	for _, r := range rows[:2] {
		if r.val("_op") != "r" {
			t.Errorf("first rows must be the snapshot's: %s", r.describe())
		}
		snap[r.val("id")] = r
	}
	if r := snap["0"]; r == nil || r.val("v") != "zero" || !r.isNull("big") {
		t.Errorf("snapshot row 0: got %v", r.describe())
	}
	if r := snap["9"]; r == nil || r.val("v") != "nine" || r.val("big") != big {
		t.Errorf("snapshot row 9 (with a TOASTed value of %d bytes): got %v", len(big), r.describe())
	}

	norm := func(r row, col string) string {
		if r.isNull(col) {
			return "NULL"
		}
		return r.val(col)
	}
	var prevCommit int64
	for i, w := range wants {
		r := rows[2+i]
		tx := txs[w.tx]
		check := func(col, wantVal string) {
			if wantVal != "*" && norm(r, col) != wantVal {
				t.Errorf("record %d (%s of id %s): %s = %s, want %s\n  %s", i, w.op, w.id, col, r.str(col), wantVal, r.describe())
			}
		}
		check("_op", w.op)
		check("id", w.id)
		check("v", w.v)
		check("big", w.big)
		if w.unchanged == "NULL" {
			if !r.isNull("_unchanged") && r.val("_unchanged") != "[]" {
				t.Errorf("record %d (%s of id %s): _unchanged = %s, want none", i, w.op, w.id, r.str("_unchanged"))
			}
		} else {
			check("_unchanged", w.unchanged)
		}
		check("_txid", tx.xid)
		us, err := strconv.ParseInt(r.val("_commit_us"), 10, 64)
		if err != nil {
			t.Errorf("record %d: _commit_ts %s: %v", i, r.str("_commit_us"), err)
			continue
		}
		ct := time.UnixMicro(us)
		if ct.Before(tx.before.Truncate(time.Microsecond)) || ct.After(tx.after) {
			t.Errorf("record %d (%s of id %s): _commit_ts %s is not between the transaction's BEGIN (%s) and the end of its COMMIT (%s)",
				i, w.op, w.id, ct.UTC().Format(time.RFC3339Nano), tx.before.UTC().Format(time.RFC3339Nano), tx.after.UTC().Format(time.RFC3339Nano))
		}
		if us < prevCommit {
			t.Errorf("record %d: _commit_ts goes back in time", i)
		}
		prevCommit = us
	}
	// One transaction: one commit time and one txid for all its records.
	if rows[2].val("_commit_us") != rows[3].val("_commit_us") {
		t.Errorf("the two inserts of one transaction have different _commit_ts: %s, %s", rows[2].val("_commit_us"), rows[3].val("_commit_us"))
	}
}

// describeRows renders rows one a line, for failure messages.
func describeRows(rows []row) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("  " + r.describe() + "\n")
	}
	return b.String()
}

// TestIdleSlotDoesNotHoldBackWAL: while its tables are idle and other databases write,
// a running connector with heartbeats keeps confirming its slot, so PostgreSQL can
// recycle the WAL (sources/postgres/README.md, "Retained WAL").
func TestIdleSlotDoesNotHoldBackWAL(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_idle")
	mustExec(t, conn, "CREATE TABLE public.quiet (id int PRIMARY KEY); INSERT INTO public.quiet VALUES (1)")
	p := newPipe(t, "idle_slot", dsn, false, "public.quiet")
	p.extra = "      heartbeat: 1s\n"
	p.writeConfig(t)
	db := lakedb.DuckDB(t)
	d := startRun(t, p.config)
	waitFor(t, 60*time.Second, d, "the snapshot in the lake", func() (bool, string) {
		n := lakeCount(t, db, lakeTable(p.lakeDir, "public", "quiet"))
		return n == 1, fmt.Sprintf("%d rows in the lake", n)
	})

	// WAL from another database, none of it for this connector.
	_, busy := newDatabase(t, "e2e_idle_busy")
	mustExec(t, busy, "CREATE TABLE noise (id int, pad text); INSERT INTO noise SELECT g, repeat('n', 100) FROM generate_series(1, 20000) g")
	var target string
	if err := busy.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&target); err != nil {
		t.Fatal(err)
	}
	slot := "connectd_" + p.name
	waitFor(t, 60*time.Second, d, "the idle slot to confirm the WAL written elsewhere ("+target+")", func() (bool, string) {
		var confirmed string
		var past bool
		err := conn.QueryRow(context.Background(),
			"SELECT confirmed_flush_lsn::text, confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
			slot, target).Scan(&confirmed, &past)
		if err != nil {
			return false, err.Error()
		}
		return past, "slot " + slot + " confirmed_flush_lsn " + confirmed
	})
	d.stopClean(t)
	if n := lakeCount(t, db, lakeTable(p.lakeDir, "public", "quiet")); n != 1 {
		t.Errorf("the idle table has %d rows in the lake, want 1 (heartbeats are not data)", n)
	}
	var files []string
	for _, f := range parquetFiles(t, p.lakeDir) {
		rel, _ := filepath.Rel(p.lakeDir, f)
		if !strings.HasPrefix(filepath.ToSlash(rel), "public/quiet/") {
			files = append(files, rel)
		}
	}
	if len(files) > 0 {
		t.Errorf("the lake holds files of no captured table (heartbeats are not data): %v", files)
	}
}
