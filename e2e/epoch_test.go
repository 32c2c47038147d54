package e2e

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// TestResetStartsANewEpochAfterEverythingInTheLake: snapshot and stream, then
// `offsets reset` with changes made before and after it, then sync again, twice, and
// two resets in a row. Every reset starts a full copy whose positions sort after
// everything already in the lake, so the lake rebuilt by latest _pos per key gives
// the source's current rows, and no _pos repeats across epochs.
func TestResetStartsANewEpochAfterEverythingInTheLake(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_epoch")
	mustExec(t, conn, `CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL, qty int);
INSERT INTO public.items SELECT g, 'item ' || g, g * 10 FROM generate_series(1, 30) g`)
	p := newPipe(t, "epoch_reset", dsn, false, "public.items")
	p.writeConfig(t)
	db := lakedb.DuckDB(t)
	dir := lakeTable(p.lakeDir, "public", "items")
	read := func() []row {
		return readTable(t, db, dir, "CAST(id AS VARCHAR) AS id", "name", "CAST(qty AS VARCHAR) AS qty")
	}
	source := func() []row {
		return pgRows(t, conn, "SELECT id::text AS id, name, qty::text AS qty FROM public.items")
	}
	reconcile := func(step string, epoch int) {
		t.Helper()
		rows := read()
		checkPositions(t, rows)
		src := source()
		// The latest epoch is a full copy: rebuilt alone it is the source exactly.
		compareTable(t, rebuild(inEpoch(rows, epoch), "id"), src, "id", "name", "qty")
		// Over the whole lake, latest _pos per key gives every source row its current
		// value; only keys deleted while no epoch was running can linger (checked by
		// the caller, docs/operations.md).
		all := rebuild(rows, "id")
		for k := range all {
			if !hasKey(src, k) {
				delete(all, k)
			}
		}
		compareTable(t, all, src, "id", "name", "qty")
		if t.Failed() {
			t.Fatalf("%s: the lake does not match the source:\n%s", step, describeRows(rows))
		}
	}

	p.sync(t)
	mustExec(t, conn, `INSERT INTO public.items SELECT g, 'item ' || g, g FROM generate_series(31, 40) g`)
	mustExec(t, conn, `UPDATE public.items SET qty = -qty WHERE id BETWEEN 5 AND 9`)
	mustExec(t, conn, `DELETE FROM public.items WHERE id IN (1, 2)`)
	p.sync(t)
	reconcile("epoch 0", 0)
	if n := len(read()); n != 30+10+5+2 {
		t.Fatalf("epoch 0 wrote %d rows, want 47", n)
	}

	// Changes made after the last sync and before the reset are never streamed: the
	// new snapshot must carry them, and sort after the older rows of the same keys.
	mustExec(t, conn, `UPDATE public.items SET name = 'before reset' WHERE id IN (10, 11)`)
	reset(t, p, 1)
	mustExec(t, conn, `UPDATE public.items SET name = 'after reset' WHERE id IN (11, 12)`)
	mustExec(t, conn, `INSERT INTO public.items VALUES (41, 'item 41', 41)`)
	mustExec(t, conn, `DELETE FROM public.items WHERE id = 3`)
	p.sync(t)
	rows := read()
	snap := inEpoch(rows, 1)
	if n := len(source()); len(snap) != n {
		t.Errorf("epoch 1 holds %d rows, want its snapshot of the %d source rows", len(snap), n)
	}
	for _, r := range snap {
		if r.val("_op") != "r" {
			t.Errorf("epoch 1 before any change: %s", r.describe())
		}
	}
	reconcile("epoch 1 snapshot", 1)
	// The one key the whole lake keeps stale: deleted after the last sync of epoch 0
	// and before the first of epoch 1, it has no record in epoch 1.
	if last, ok := rebuild(rows, "id")["3"]; !ok || strings.HasPrefix(last.val("_pos"), "ff") {
		t.Errorf("id 3, deleted between two epochs: the whole lake's latest row is %v (ok %v), want the one of epoch 0", last, ok)
	}

	mustExec(t, conn, `UPDATE public.items SET qty = 0 WHERE id BETWEEN 20 AND 25`)
	mustExec(t, conn, `DELETE FROM public.items WHERE id IN (4, 41)`)
	mustExec(t, conn, `INSERT INTO public.items VALUES (42, 'item 42', 42)`)
	p.sync(t)
	rows = read()
	ops := map[string]int{}
	for _, r := range inEpoch(rows, 1) {
		ops[r.val("_op")]++
	}
	if ops["u"] != 6 || ops["d"] != 2 || ops["c"] != 1 {
		t.Errorf("epoch 1 streamed %v, want 6 u, 2 d, 1 c", ops)
	}
	reconcile("epoch 1 stream", 1)

	// Two resets in a row: the second counts from the first's marker, so the next
	// copy is epoch 3 and epoch 2 stays empty.
	reset(t, p, 2)
	reset(t, p, 3)
	mustExec(t, conn, `UPDATE public.items SET name = 'epoch 3' WHERE id = 5`)
	p.sync(t)
	rows = read()
	if n := len(inEpoch(rows, 2)); n != 0 {
		t.Errorf("epoch 2, reset again before any run, holds %d rows", n)
	}
	if n, want := len(inEpoch(rows, 3)), len(source()); n != want {
		t.Errorf("epoch 3 holds %d rows, want its snapshot of %d", n, want)
	}
	reconcile("epoch 3", 3)
	// The query docs/operations.md gives readers: the current epoch alone, latest
	// _pos per key, deletes applied.
	current := queryRows(t, db, "SELECT CAST(id AS VARCHAR) AS id, name, CAST(qty AS VARCHAR) AS qty FROM ("+currentEpochQuery(lakedb.ParquetTree(dir))+")")
	byID := map[string]row{}
	for _, r := range current {
		byID[r.val("id")] = r
	}
	compareTable(t, byID, source(), "id", "name", "qty")
	if len(current) != len(byID) {
		t.Errorf("the current-epoch query returned %d rows for %d keys", len(current), len(byID))
	}
	show := connectd(t, 30*time.Second, "offsets", "show", "-c", p.config, p.name)
	if show.code != 0 || !strings.Contains(show.stdout, "reset epoch 3, ") || !strings.Contains(show.stdout, "snapshot complete") && !strings.Contains(show.stdout, "lsn ") {
		t.Errorf("offsets show after the epoch-3 sync: %s", show)
	}
	lakeFilesByEpoch(t, db, dir)
}

// currentEpochQuery is the reader's query of docs/operations.md ("What a reset does
// to the lake"), tree being a DuckDB read_parquet(...) of one table keyed by id.
func currentEpochQuery(tree string) string {
	return `WITH lake AS (SELECT * FROM ` + tree + `),
     cur AS (SELECT max(CASE WHEN _pos LIKE 'ff%' THEN left(_pos, 10) ELSE '' END) AS since FROM lake)
SELECT lake.* FROM lake, cur
WHERE lake._pos >= cur.since
QUALIFY row_number() OVER (PARTITION BY id ORDER BY _pos DESC) = 1 AND _op <> 'd'`
}

// reset runs `connectd offsets reset` and checks it reports the new epoch.
func reset(t *testing.T, p *pipe, epoch int) {
	t.Helper()
	r := connectd(t, 30*time.Second, "offsets", "reset", "-c", p.config, p.name)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("in reset epoch %d,", epoch)) {
		t.Fatalf("offsets reset to epoch %d: %s", epoch, r)
	}
	show := connectd(t, 30*time.Second, "offsets", "show", "-c", p.config, p.name)
	want := fmt.Sprintf("reset epoch %d, start of the epoch", epoch)
	if show.code != 0 || !strings.Contains(show.stdout, want) {
		t.Fatalf("offsets show after a reset: want %q in %s", want, show)
	}
}

// inEpoch keeps the rows whose _pos belongs to the reset epoch (0: never reset).
func inEpoch(rows []row, epoch int) []row {
	var out []row
	for _, r := range rows {
		if posEpoch(r.val("_pos")) == epoch {
			out = append(out, r)
		}
	}
	return out
}

// posEpoch reads the reset epoch from a _pos in its hex form (pipeline/epoch.go).
func posEpoch(pos string) int {
	if !strings.HasPrefix(pos, "ff") || len(pos) < 10 {
		return 0
	}
	var e int
	if _, err := fmt.Sscanf(pos[2:10], "%x", &e); err != nil {
		return -1
	}
	return e
}

func hasKey(rows []row, key string) bool {
	for _, r := range rows {
		if r.val("id") == key {
			return true
		}
	}
	return false
}

// lakeFilesByEpoch checks the query docs/operations.md gives for finding the files
// of older epochs: every file lies in one epoch, so dropping whole files is safe.
func lakeFilesByEpoch(t *testing.T, db *sql.DB, dir string) {
	t.Helper()
	q := "SELECT filename, min(_pos), max(_pos) FROM " + treeWithFilename(dir) + " GROUP BY filename"
	rs, err := db.Query(q)
	if err != nil {
		t.Fatalf("duckdb: %s: %v", q, err)
	}
	defer rs.Close()
	for rs.Next() {
		var f, lo, hi string
		if err := rs.Scan(&f, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if posEpoch(lo) != posEpoch(hi) {
			t.Errorf("file %s holds positions of epochs %d to %d", f, posEpoch(lo), posEpoch(hi))
		}
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckRefusesTwoConnectorsOnOneSlotOrLake: orders-eu and orders_eu both default
// to slot connectd_orders_eu; with a third connector writing inside the first one's
// lake, `connectd check` exits 2 and names each conflict with file, line and key.
func TestCheckRefusesTwoConnectorsOnOneSlotOrLake(t *testing.T) {
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	config := filepath.Join(dir, "connectd.yaml")
	writeFile(t, config, fmt.Sprintf(`offsets: file://%[1]s/offsets
connectors:
  orders-eu:
    source: {type: postgres, dsn: %[2]q, tables: [public.orders]}
    destination: {type: parquet, url: "file://%[3]s/eu"}
  orders_eu:
    source: {type: postgres, dsn: %[2]q, tables: [public.orders]}
    destination: {type: parquet, url: "file://%[3]s/eu2"}
  archive:
    source: {type: postgres, dsn: %[2]q, tables: [public.archive]}
    destination:
      type: parquet
      url: "file://%[3]s/eu/archive"
`, dir, pgServer(t).DSN, lake))
	r := connectd(t, 30*time.Second, "check", "-c", config)
	if r.code != 2 {
		t.Fatalf("connectd check: want exit 2, got %s", r)
	}
	for _, want := range []string{
		config + `:6: connectors.orders_eu.source.slot: replication slot "connectd_orders_eu" is also used by connector "orders-eu" (line 3)`,
		config + `:6: connectors.orders_eu.source.publication: publication "connectd_orders_eu" is also used by connector "orders-eu" (line 3)`,
		config + `:13: connectors.archive.destination.url: file://` + lake + `/eu/archive: it lies inside the lake of connector "orders-eu"`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("connectd check: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}
