package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// The warehouse destinations end to end: a source PostgreSQL, connectd, and a target
// of their own (a PostgreSQL cluster, or a DuckDB file: warehouse_duckdb_test.go),
// compared with independent queries on both sides.

// whConnector is one postgres -> postgres connector of a warehouse test.
type whConnector struct {
	name   string
	schema string // the target schema
	mode   string
	soft   bool
	dsn    string // the target's DSN, when not the setup's
	extra  string // more destination keys, YAML lines indented for the destination block
}

// whSetup is the config of a warehouse test: connectors from one source database
// into schemas of one target database, and a file offsets store.
type whSetup struct {
	srcDSN, tgtDSN string
	tables         []string
	conns          []*whConnector
	offsets        string
	config         string
	flush          string
	// tgt is the test's connection to the PostgreSQL target, which the checks read.
	tgt *pgx.Conn
	// duck, when set, is the DuckDB file the connectors load instead (type duckdb,
	// run by the binary that has it).
	duck string
}

func newWhSetup(t *testing.T, srcDSN, tgtDSN string, tables ...string) *whSetup {
	dir := t.TempDir()
	return &whSetup{srcDSN: srcDSN, tgtDSN: tgtDSN, tables: tables,
		offsets: filepath.Join(dir, "offsets"), config: filepath.Join(dir, "connectd.yaml"),
		// Few rows per flush: the workload spans many flushes, and a key's changes
		// land both within one flush and across several.
		flush: "{rows: 300, bytes: 16MiB, interval: 1s}"}
}

// add adds a connector named after name, loading into a schema of the same name.
func (s *whSetup) add(name, mode string, soft bool) *whConnector {
	c := &whConnector{name: unique(name), mode: mode, soft: soft}
	c.schema = c.name
	s.conns = append(s.conns, c)
	return c
}

func (s *whSetup) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "offsets: file://%s\nconnectors:\n", s.offsets)
	quoted := make([]string, len(s.tables))
	for i, tb := range s.tables {
		quoted[i] = strconv.Quote(tb)
	}
	for _, c := range s.conns {
		fmt.Fprintf(&b, "  %s:\n    source:\n      type: postgres\n      dsn: %q\n      tables: [%s]\n", c.name, s.srcDSN, strings.Join(quoted, ", "))
		dsn := s.tgtDSN
		if c.dsn != "" {
			dsn = c.dsn
		}
		if s.duck != "" {
			fmt.Fprintf(&b, "    destination:\n      type: duckdb\n      path: %q\n", s.duck)
		} else {
			fmt.Fprintf(&b, "    destination:\n      type: postgres\n      dsn: %q\n", dsn)
		}
		fmt.Fprintf(&b, "      schema: %s\n      mode: %s\n      soft_delete: %t\n      flush: %s\n%s",
			c.schema, c.mode, c.soft, s.flush, c.extra)
	}
	return b.String()
}

func (s *whSetup) writeConfig(t *testing.T) {
	t.Helper()
	writeFile(t, s.config, s.yaml())
}

// bin is the connectd binary that has the setup's destination.
func (s *whSetup) bin(t *testing.T) string {
	t.Helper()
	if s.duck != "" {
		return duckdbBin(t)
	}
	return connectdBin(t)
}

// sync runs `connectd sync` and fails the test unless it exits 0.
func (s *whSetup) sync(t *testing.T) result {
	t.Helper()
	r := connectdWith(t, s.bin(t), 3*time.Minute, "sync", "-c", s.config)
	if r.code != 0 {
		t.Fatalf("connectd sync -c %s: want exit 0, got %s", s.config, r)
	}
	return r
}

// newTargetDatabase creates a database of the test's own on the target cluster.
func newTargetDatabase(t *testing.T, name string) (string, *pgx.Conn) {
	t.Helper()
	name = unique(name)
	dsn, err := targetServer(t).CreateDatabase(context.Background(), name)
	if err != nil {
		t.Fatalf("create target database %s: %v", name, err)
	}
	return dsn, connect(t, dsn)
}

// nullText stands for NULL in text rows.
const nullText = "<NULL>"

// whTarget is a warehouse test's target as the checks read it.
type whTarget interface {
	// rows runs a query whose columns are all text (or NULL) and returns its rows.
	rows(q string) ([][]string, error)
	// text is the SQL that renders x, a target column loaded from a source column of
	// type def, as text; srcText renders the source column. Equal values give equal text.
	text(x, def string) string
	srcText(x, def string) string
}

// pgTarget is a PostgreSQL target: its column types are the source's, which both
// render with ::text.
type pgTarget struct{ conn *pgx.Conn }

func (p pgTarget) rows(q string) ([][]string, error) { return textRows(p.conn, q) }
func (pgTarget) text(x, _ string) string             { return "(" + x + ")::text" }
func (pgTarget) srcText(x, _ string) string          { return "(" + x + ")::text" }

// withTarget calls fn with the setup's target open for reading. A DuckDB file is
// opened for the call only: DuckDB lets one process open it, so call withTarget only
// while no connectd runs.
func (s *whSetup) withTarget(t *testing.T, fn func(whTarget)) {
	t.Helper()
	if s.duck == "" {
		fn(pgTarget{s.tgt})
		return
	}
	db, err := lakedb.OpenFile(s.duck)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fn(duckTarget{db})
}

// textRows runs a query whose columns are all text (or NULL) and returns its rows.
func textRows(conn *pgx.Conn, q string, args ...any) ([][]string, error) {
	rows, err := conn.Query(context.Background(), q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			switch x := v.(type) {
			case nil:
				row[i] = nullText
			case string:
				row[i] = x
			default:
				return nil, fmt.Errorf("%s: column %d is %T, not text", q, i+1, v)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	return out, nil
}

// clipText shortens a value for messages (a TOAST column holds kilobytes).
func clipText(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%s...(%d bytes)", s[:60], len(s))
	}
	return s
}

// report collects the problems of one check, a few of each shown.
type report struct {
	label    string
	problems []string
}

func (r *report) add(format string, args ...any) {
	r.problems = append(r.problems, r.label+": "+fmt.Sprintf(format, args...))
}

// targetTable is the target table of a source table (the default pattern {table}).
func (c whConnector) targetTable(source string) string {
	_, table, _ := strings.Cut(source, ".")
	return pgx.Identifier{c.schema, table}.Sanitize()
}

// textList renders columns of a workload table as text with render (whTarget's
// text or srcText).
func textList(s *whTable, cols []string, render func(x, def string) string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = render(pgx.Identifier{c}.Sanitize(), s.def(c))
	}
	return strings.Join(out, ", ")
}

// compareRows compares the rows of a source table with those of its target table
// (tgtWhere selects the target's rows), every column as text, ordered by key.
func compareRows(r *report, src *pgx.Conn, tgt whTarget, spec *whTable, tgtTable, tgtWhere string) {
	cols := spec.allCols()
	order := strings.Join(spec.keyCols, ", ")
	sq := fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", textList(spec, cols, tgt.srcText), spec.name, order)
	tq := fmt.Sprintf("SELECT %s FROM %s %s ORDER BY %s", textList(spec, cols, tgt.text), tgtTable, tgtWhere, order)
	want, err := textRows(src, sq)
	if err != nil {
		r.add("source: %v", err)
		return
	}
	got, err := tgt.rows(tq)
	if err != nil {
		r.add("target: %v", err)
		return
	}
	nk := len(spec.keyCols)
	key := func(row []string) string { return strings.Join(row[:nk], ",") }
	gotBy := map[string][]string{}
	for _, g := range got {
		gotBy[key(g)] = g
	}
	wantBy := map[string]bool{}
	for _, w := range want {
		k := key(w)
		wantBy[k] = true
		g, ok := gotBy[k]
		if !ok {
			r.add("%s key (%s) is in the source but not in %s", spec.name, k, tgtTable)
			continue
		}
		for i := nk; i < len(cols); i++ {
			if g[i] != w[i] {
				r.add("%s key (%s) column %s: target %q, source %q", spec.name, k, cols[i], clipText(g[i]), clipText(w[i]))
			}
		}
	}
	for _, g := range got {
		if !wantBy[key(g)] {
			r.add("%s key (%s) is in %s but not in the source", spec.name, key(g), tgtTable)
		}
	}
}

// checkMerge: the merge target equals the source, row for row, with its metadata set.
func checkMerge(r *report, src *pgx.Conn, tgt whTarget, w *whWorkload, c whConnector) {
	for _, m := range w.tables {
		tt := c.targetTable(m.spec.name)
		compareRows(r, src, tgt, m.spec, tt, "")
		nulls, err := tgt.rows(fmt.Sprintf("SELECT count(*)::text FROM %s WHERE _pos IS NULL OR _pos = '' OR _commit_ts IS NULL", tt))
		if err != nil {
			r.add("%v", err)
		} else if nulls[0][0] != "0" {
			r.add("%s: %s rows without _pos or _commit_ts", tt, nulls[0][0])
		}
	}
}

// checkSoft: the rows not marked deleted equal the source; the rows marked deleted are
// exactly the keys the workload deleted, each as it was when deleted.
func checkSoft(r *report, src *pgx.Conn, tgt whTarget, w *whWorkload, c whConnector) {
	for _, m := range w.tables {
		tt := c.targetTable(m.spec.name)
		compareRows(r, src, tgt, m.spec, tt, "WHERE NOT _deleted")
		rows, err := tgt.rows(fmt.Sprintf("SELECT (%s)::text, ver::text, (_deleted_at IS NOT NULL)::text FROM %s WHERE _deleted", m.spec.keyNumber(), tt))
		if err != nil {
			r.add("%v", err)
			continue
		}
		got := map[int64]bool{}
		for _, row := range rows {
			k, _ := strconv.ParseInt(row[0], 10, 64)
			got[k] = true
			ver, ok := m.deleted[k]
			switch {
			case !ok:
				r.add("%s: key %d is marked deleted, but the workload did not delete it", tt, k)
			case row[1] != strconv.FormatInt(ver, 10):
				r.add("%s: deleted key %d has ver %s, it had %d when deleted", tt, k, row[1], ver)
			}
			if row[2] != "true" {
				r.add("%s: deleted key %d has no _deleted_at", tt, k)
			}
		}
		for k := range m.deleted {
			if !got[k] {
				r.add("%s: key %d was deleted on the source, but is not marked deleted in the target", tt, k)
			}
		}
		bad, err := tgt.rows(fmt.Sprintf("SELECT count(*)::text FROM %s WHERE NOT _deleted AND _deleted_at IS NOT NULL", tt))
		if err != nil {
			r.add("%v", err)
		} else if bad[0][0] != "0" {
			r.add("%s: %s live rows with a _deleted_at", tt, bad[0][0])
		}
	}
}

// checkAppend: the change log holds every change the workload committed exactly
// once, per key in commit order, at increasing positions, each with the values the
// workload wrote; an update that left a TOAST column alone names it in _unchanged.
func checkAppend(r *report, src *pgx.Conn, tgt whTarget, w *whWorkload, c whConnector) {
	for _, m := range w.tables {
		s := m.spec
		tt := c.targetTable(s.name)
		cols := append([]string{"ver"}, colNames(s)...)
		q := fmt.Sprintf("SELECT (%s)::text, _op, _pos, coalesce(_unchanged::text, ''), %s FROM %s ORDER BY _pos", s.keyNumber(), textList(s, cols, tgt.text), tt)
		rows, err := tgt.rows(q)
		if err != nil {
			r.add("%v", err)
			continue
		}
		seq := map[int64][]whChange{}
		var pairs [][2]int64 // (key, version) of each row that carries values
		prev := ""
		for i, row := range rows {
			if i > 0 && row[2] <= prev {
				r.add("%s: _pos %s follows %s", tt, row[2], prev)
			}
			prev = row[2]
			k, _ := strconv.ParseInt(row[0], 10, 64)
			var ver int64
			if row[4] != nullText {
				ver, _ = strconv.ParseInt(row[4], 10, 64)
			}
			seq[k] = append(seq[k], whChange{row[1][0], ver})
			if ver != 0 {
				pairs = append(pairs, [2]int64{k, ver})
			}
		}
		if len(rows) != m.changes {
			r.add("%s holds %d changes, the workload committed %d", tt, len(rows), m.changes)
		}
		keys := map[int64]bool{}
		for k := range m.hist {
			keys[k] = true
		}
		for k := range seq {
			keys[k] = true
		}
		sorted := make([]int64, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		for _, k := range sorted {
			if g, w := fmt.Sprint(seq[k]), fmt.Sprint(m.hist[k]); g != w {
				r.add("%s key %d: changes (by _pos) %s, the workload committed %s", tt, k, g, w)
			}
		}
		want, err := expectedValues(src, tgt, s, pairs)
		if err != nil {
			r.add("%v", err)
			continue
		}
		for _, row := range rows {
			if row[4] == nullText {
				continue // a delete that carries the key only
			}
			k, _ := strconv.ParseInt(row[0], 10, 64)
			exp := want[row[0]+"/"+row[4]]
			unchanged := row[3]
			for i, col := range s.cols {
				got := row[5+i]
				if got == exp[i] {
					continue
				}
				if col.keep && row[1] != "r" && got == nullText && strings.Contains(unchanged, col.name) {
					continue // a TOAST value the source did not send
				}
				r.add("%s key %d %s at %s: column %s is %q, the workload wrote %q (_unchanged %s)", tt, k, row[1], row[2], col.name, clipText(got), clipText(exp[i]), unchanged)
			}
		}
	}
}

func colNames(s *whTable) []string {
	out := make([]string, len(s.cols))
	for i, c := range s.cols {
		out[i] = c.name
	}
	return out
}

// expectedValues computes on the source what the workload wrote for each (key,
// version): the value columns as text (as tgt renders the source), by "key/version".
func expectedValues(src *pgx.Conn, tgt whTarget, s *whTable, pairs [][2]int64) (map[string][]string, error) {
	ks, vs := make([]int64, len(pairs)), make([]int64, len(pairs))
	for i, p := range pairs {
		ks[i], vs[i] = p[0], p[1]
	}
	exprs := []string{"x.k::text", "x.v::text"}
	for _, c := range s.cols {
		exprs = append(exprs, tgt.srcText("("+sub(c.expr, "x.k", "x.v")+")::"+c.def, c.def))
	}
	rows, err := textRows(src, "SELECT "+strings.Join(exprs, ", ")+" FROM unnest($1::bigint[], $2::bigint[]) AS x(k, v)", ks, vs)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, row := range rows {
		out[row[0]+"/"+row[1]] = row[2:]
	}
	return out, nil
}

// check runs the check of every connector; it returns the problems found.
func (s *whSetup) check(src *pgx.Conn, tgt whTarget, w *whWorkload, when string) []string {
	var all []string
	for _, c := range s.conns {
		r := &report{label: fmt.Sprintf("%s, %s (%s)", when, c.name, c.mode)}
		switch {
		case c.mode == "append":
			checkAppend(r, src, tgt, w, *c)
		case c.soft:
			checkSoft(r, src, tgt, w, *c)
		default:
			checkMerge(r, src, tgt, w, *c)
		}
		all = append(all, r.problems...)
	}
	return all
}

// mustMatch fails the test with the problems check finds (the first few).
func (s *whSetup) mustMatch(t *testing.T, src *pgx.Conn, w *whWorkload, when string) {
	t.Helper()
	var p []string
	s.withTarget(t, func(tgt whTarget) { p = s.check(src, tgt, w, when) })
	for i, msg := range p {
		if i == 25 {
			t.Errorf("... and %d more", len(p)-i)
			break
		}
		t.Error(msg)
	}
	if len(p) > 0 {
		t.FailNow()
	}
}

// TestWarehouseReplicatesRandomWorkload: a seeded random workload (inserts, updates,
// deletes, key changes, rolled-back transactions, TOAST columns left alone by
// updates, NULLs, many types, a column added mid-stream) goes through `connectd sync`
// and `connectd run` into three connectors at once: merge (the target equals the
// source row for row), merge with soft deletes (the deleted rows marked, as they were)
// and append (every change exactly once).
func TestWarehouseReplicatesRandomWorkload(t *testing.T) {
	srcDSN, src := newDatabase(t, "e2e_wh")
	w := startWhWorkload(t, src)
	tgtDSN, tgt := newTargetDatabase(t, "e2e_wh_target")
	s := newWhSetup(t, srcDSN, tgtDSN, "shop.*")
	s.tgt = tgt
	s.replicate(t, src, w)
}

// startWhWorkload creates the workload's tables on the source and fills them.
func startWhWorkload(t *testing.T, src *pgx.Conn) *whWorkload {
	t.Helper()
	ctx := context.Background()
	w := newWhWorkload(t, src, whSeed(t))
	if err := w.create(ctx); err != nil {
		t.Fatal(err)
	}
	for table, n := range map[string]int{"shop.orders": 300, "shop.lines": 300, "shop.docs": 60} {
		if err := w.preload(ctx, table, n); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// replicate runs the workload into three connectors of s (merge, merge with soft
// deletes, append): the snapshot and a part of the workload by `connectd sync`, the
// rest, with a column added half way, by `connectd run`; the targets are checked
// after each.
func (s *whSetup) replicate(t *testing.T, src *pgx.Conn, w *whWorkload) {
	t.Helper()
	ctx := context.Background()
	s.add("wh_merge", "merge", false)
	s.add("wh_soft", "merge", true)
	s.add("wh_append", "append", false)
	s.writeConfig(t)

	s.sync(t)
	s.mustMatch(t, src, w, "after the snapshot")

	if err := w.steps(ctx, 150); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	s.mustMatch(t, src, w, "after a sync of the workload")
	s.withTarget(t, func(tgt whTarget) { w.noteToast(t, tgt, *s.conns[2]) })

	// connectd run while the workload goes on; a column is added to the source half way.
	d := startRunWith(t, s.bin(t), s.config)
	errc := make(chan error, 1)
	go func() {
		err := w.steps(ctx, 100)
		if err == nil {
			err = w.addColumn(ctx, "shop.orders", "extra", "text", "'x' || V")
		}
		for i := 0; i < 100 && err == nil; i++ {
			err = w.step(ctx)
			time.Sleep(time.Duration(w.rng.IntN(20)) * time.Millisecond)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if s.duck == "" {
		var last []string
		waitFor(t, 2*time.Minute, d, "the targets to catch up with the workload", func() (bool, string) {
			last = s.check(src, pgTarget{s.tgt}, w, "while running")
			if len(last) == 0 {
				return true, ""
			}
			return false, fmt.Sprintf("%d differences, the first: %s", len(last), last[0])
		})
	} else {
		// The file cannot be read while connectd has it open: wait until every
		// connector committed a last transaction, then stop connectd and compare.
		s.waitCommitted(t, d, src, w)
	}
	d.stopClean(t)
	s.mustMatch(t, src, w, "after connectd run stopped")
	s.withTarget(t, func(tgt whTarget) {
		for _, c := range s.conns {
			tt := c.targetTable("shop.orders")
			n, err := tgt.rows(fmt.Sprintf("SELECT count(extra)::text FROM %s", tt))
			if err != nil {
				t.Fatalf("the added column in %s: %v", tt, err)
			}
			if n[0][0] == "0" {
				t.Errorf("%s: the column added on the source holds no value in the target", tt)
			}
		}
	})
	// A sync with nothing new changes nothing.
	s.sync(t)
	s.mustMatch(t, src, w, "after a last sync")
	t.Logf("workload: %d transactions, %d statements; changes: orders %d, lines %d, docs %d", w.txns, w.stmts,
		w.byName["shop.orders"].changes, w.byName["shop.lines"].changes, w.byName["shop.docs"].changes)
}

// waitCommitted commits one more workload transaction and waits until the slot of
// every connector confirmed it: a slot confirms a transaction with records for its
// connector just past the start of its commit record, once the connector committed
// it (sources/postgres/README.md), and the connectors commit in source order.
func (s *whSetup) waitCommitted(t *testing.T, d *daemon, src *pgx.Conn, w *whWorkload) {
	t.Helper()
	ctx := context.Background()
	var before string
	if err := src.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := w.commitOne(ctx); err != nil {
		t.Fatal(err)
	}
	slots := make([]string, len(s.conns))
	for i, c := range s.conns {
		slots[i] = "connectd_" + c.name
	}
	waitFor(t, 2*time.Minute, d, "every connector to commit the workload's last transaction (after "+before+")", func() (bool, string) {
		rows, err := textRows(src, fmt.Sprintf(`SELECT slot_name::text, confirmed_flush_lsn::text FROM pg_replication_slots
WHERE slot_name IN (%s) AND confirmed_flush_lsn > '%s'::pg_lsn`, quoteList(slots), before))
		if err != nil {
			return false, err.Error()
		}
		return len(rows) == len(slots), fmt.Sprintf("slots past %s: %v", before, rows)
	})
}

// quoteList is SQL string literals of names (test names, which hold no quote).
func quoteList(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "'" + n + "'"
	}
	return strings.Join(out, ", ")
}

// noteToast fails the test unless updates that left the docs' TOAST columns alone
// reached the append target as unchanged: otherwise the test would not exercise them.
func (w *whWorkload) noteToast(t *testing.T, tgt whTarget, c whConnector) {
	t.Helper()
	// _unchanged as text: {body,blob} on PostgreSQL, [body, blob] on DuckDB.
	q := fmt.Sprintf("SELECT count(*)::text FROM %s WHERE _op = 'u' AND body IS NULL AND _unchanged::text LIKE '%%body%%'", c.targetTable("shop.docs"))
	rows, err := tgt.rows(q)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0][0] == "0" {
		t.Fatalf("no update of shop.docs left body unchanged (TOAST): the workload does not exercise unchanged values")
	}
	t.Logf("%s updates of shop.docs sent body as unchanged (TOAST)", rows[0][0])
}

// lineOf is the 1-based line of the first line of text that contains every one of
// parts after the line containing after; 0 when there is none.
func lineOf(text, after string, parts ...string) int {
	seen := after == ""
	for i, l := range strings.Split(text, "\n") {
		if !seen {
			seen = strings.Contains(l, after)
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return i + 1
		}
	}
	return 0
}

// TestWarehouseCheckDiscoverAndSync: check passes against the target and leaves
// nothing behind; discover shows the CREATE TABLE of each target table (or why it
// cannot be created), and sync creates exactly that table.
func TestWarehouseCheckDiscoverAndSync(t *testing.T) {
	ctx := context.Background()
	srcDSN, src := newDatabase(t, "e2e_wh_check")
	mustExec(t, src, `CREATE TABLE public.orders (id int PRIMARY KEY, total numeric(10,2), tags text[], placed timestamptz, "Mixed Case" text);
CREATE TABLE public.events (at timestamptz, what jsonb);
ALTER TABLE public.events REPLICA IDENTITY FULL;
CREATE TABLE public.meta (id int PRIMARY KEY, _deleted boolean);
INSERT INTO public.orders VALUES (1, 9.99, '{a,b}', '2026-01-01 10:00:00+00', 'x'), (2, NULL, NULL, NULL, NULL);
INSERT INTO public.events VALUES ('2026-01-01 10:00:00+00', '{"a": 1}')`)
	tgtDSN, tgt := newTargetDatabase(t, "e2e_wh_check_target")
	s := newWhSetup(t, srcDSN, tgtDSN, "public.orders", "public.events", "public.meta")
	c := s.add("wh_check", "merge", false)
	s.writeConfig(t)

	r := connectd(t, 60*time.Second, "check", "-c", s.config)
	if r.code != 0 || len(failLines(r.stdout)) > 0 {
		t.Errorf("check: want exit 0 and no FAIL line, got %s", r)
	}
	for _, want := range []string{"postgres: version", "postgres: create a table in " + c.schema, "postgres: alter a table in " + c.schema, "postgres: write rows in " + c.schema} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check does not report %q:\n%s", want, r.stdout)
		}
	}
	var n int
	if err := tgt.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", c.schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("check left schema %s behind in the target", c.schema)
	}

	// A source column named like a metadata column cannot be loaded: discover says so.
	r = connectd(t, 60*time.Second, "discover", "-c", s.config)
	if r.code != 0 {
		t.Fatalf("discover: want exit 0, got %s", r)
	}
	ordersDDL := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS "%s"."orders"`, c.schema)
	for _, want := range []string{ordersDDL, `"id" integer NOT NULL`, `"total" numeric(10,2)`, `"tags" text[]`, `"Mixed Case" text`,
		`"_pos" text COLLATE "C" NOT NULL`, `PRIMARY KEY ("id")`, "target: cannot be created: source table public.meta has a column named _deleted"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("discover does not show %q:\n%s", want, r.stdout)
		}
	}
	// The keyless table goes to an append table by a rule; the other is left out.
	s.tables = s.tables[:2]
	c.extra = "      tables: [{match: public.events, mode: append}]\n"
	s.writeConfig(t)
	r = connectd(t, 60*time.Second, "discover", "-c", s.config, "--json")
	if r.code != 0 {
		t.Fatalf("discover --json: want exit 0, got %s", r)
	}
	var out map[string][]struct {
		Table       string `json:"table"`
		TargetDDL   string `json:"target_ddl"`
		TargetError string `json:"target_error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("discover --json: %v\n%s", err, r.stdout)
	}
	ddl := map[string]string{}
	for _, tb := range out[c.name] {
		if tb.TargetError != "" {
			t.Errorf("discover --json: %s: %s", tb.Table, tb.TargetError)
		}
		ddl[tb.Table] = tb.TargetDDL
	}
	if !strings.Contains(ddl["events"], `"_op" text`) || strings.Contains(ddl["events"], "PRIMARY KEY") {
		t.Errorf("discover --json: the append table's DDL has no _op, or a key:\n%s", ddl["events"])
	}

	s.sync(t)
	// The tables sync created are the ones discover showed, column for column.
	for table, stmt := range ddl {
		rows, err := textRows(tgt, `SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
FROM pg_attribute a WHERE a.attrelid = ($1 || '.' || $2)::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
			pgx.Identifier{c.schema}.Sanitize(), pgx.Identifier{table}.Sanitize())
		if err != nil {
			t.Fatal(err)
		}
		var defs []string
		for _, row := range rows {
			defs = append(defs, pgx.Identifier{row[0]}.Sanitize()+" "+row[1])
		}
		var shown []string
		for _, l := range strings.Split(stmt, "\n") {
			l = strings.TrimSuffix(strings.TrimSpace(l), ",")
			if strings.HasPrefix(l, `"`) {
				shown = append(shown, strings.Replace(l, ` COLLATE "C"`, "", 1))
			}
		}
		if strings.Join(defs, "\n") != strings.Join(shown, "\n") {
			t.Errorf("target table %s has columns\n%s\nbut discover showed\n%s", table, strings.Join(defs, "\n"), strings.Join(shown, "\n"))
		}
	}
	want, err := textRows(src, `SELECT id::text, total::text, tags::text, placed::text, "Mixed Case" FROM public.orders ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := textRows(tgt, fmt.Sprintf(`SELECT id::text, total::text, tags::text, placed::text, "Mixed Case" FROM %s ORDER BY id`, c.targetTable("public.orders")))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("target orders %v, source %v", got, want)
	}
	got, err = textRows(tgt, fmt.Sprintf(`SELECT _op, at::text, what::text FROM %s`, c.targetTable("public.events")))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != `[[r 2026-01-01 10:00:00+00 {"a": 1}]]` {
		t.Errorf("target events %v, want the snapshot's one row", got)
	}
}

// TestWarehouseBadTargetErrors: a DSN that cannot be parsed is a config error at its
// line; an unreachable target fails check with the fix, and run says which target it
// cannot reach, and keeps trying, without showing the password.
func TestWarehouseBadTargetErrors(t *testing.T) {
	srcDSN, src := newDatabase(t, "e2e_wh_bad")
	mustExec(t, src, "CREATE TABLE public.orders (id int PRIMARY KEY, total numeric(10,2))")

	bad := newWhSetup(t, srcDSN, "host=127.0.0.1 port=notaport password=s3cret dbname=wh", "public.orders")
	c := bad.add("wh_bad_dsn", "merge", false)
	bad.writeConfig(t)
	line := lineOf(bad.yaml(), "destination:", "dsn:")
	for _, cmd := range []string{"check", "sync", "discover"} {
		r := connectd(t, 30*time.Second, cmd, "-c", bad.config)
		prefix := fmt.Sprintf("%s:%d: connectors.%s.destination.dsn: cannot parse it", bad.config, line, c.name)
		if r.code != 2 || !strings.Contains(r.stderr, prefix) {
			t.Errorf("%s with an unparsable target dsn: want exit 2 and %q, got %s", cmd, prefix, r)
		}
		if strings.Contains(r.stdout+r.stderr, "s3cret") {
			t.Errorf("%s with an unparsable target dsn shows its password:\n%s", cmd, r)
		}
	}

	down := newWhSetup(t, srcDSN, "postgres://loader:s3cret@127.0.0.1:1/wh?sslmode=disable&connect_timeout=5", "public.orders")
	down.add("wh_down", "merge", false)
	down.writeConfig(t)
	r := connectd(t, 60*time.Second, "check", "-c", down.config)
	fails := strings.Join(failLines(r.stdout), "\n")
	if r.code != 1 || !strings.Contains(fails, "postgres: connect") || !strings.Contains(fails, "127.0.0.1:1/wh") || !strings.Contains(fails, "fix: check dsn") {
		t.Errorf("check with an unreachable target: want exit 1 and a FAIL line naming the target with its fix, got %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "s3cret") {
		t.Errorf("check with an unreachable target shows its password:\n%s", r)
	}
	d := startRun(t, down.config)
	waitFor(t, 60*time.Second, d, "run to report the unreachable target", func() (bool, string) {
		return strings.Contains(d.stderr.String(), "connect to 127.0.0.1:1/wh"), tail(d.stderr.String(), 5)
	})
	res := d.stopClean(t)
	if strings.Contains(res.stdout+res.stderr, "s3cret") {
		t.Errorf("run with an unreachable target shows its password:\n%s", res)
	}
}
