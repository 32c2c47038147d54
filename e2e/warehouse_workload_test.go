package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The random workload of the warehouse tests: tables whose every value is computed
// by SQL from the row's key (K) and version (V), so that the workload tracks only
// (key, version) per row and the checks read the values from the servers.

// whColumn is a value column of a workload table.
type whColumn struct {
	name, def string
	expr      string // SQL with K (the key number) and V (the version)
	// keep: a plain update leaves the column alone (a TOASTed value pgoutput then
	// sends as unchanged); only inserts and rewrites set it.
	keep bool
}

// whTable describes one workload table.
type whTable struct {
	name     string            // schema-qualified
	keyCols  []string          // the primary key, in order
	keyExprs map[string]string // key column -> SQL of K
	full     bool              // REPLICA IDENTITY FULL: a delete carries the whole old row
	cols     []*whColumn
	ddl      string // more statements after CREATE TABLE
}

// whTables is the workload: a wide table of many types, a table with a composite key
// and a table whose large columns live out of line (TOAST, storage external).
func whTables() []*whTable {
	return []*whTable{
		{
			name: "shop.orders", keyCols: []string{"id"}, keyExprs: map[string]string{"id": "K"}, full: true,
			cols: []*whColumn{
				{name: "amount", def: "numeric(14,4)",
					expr: "CASE WHEN V % 11 = 0 THEN NULL WHEN V % 23 = 0 THEN 'NaN'::numeric ELSE ((V * 7919) % 100000000) / 10000.0 - 5000 END"},
				{name: "placed", def: "timestamptz",
					expr: "CASE WHEN V % 13 = 0 THEN NULL ELSE timestamptz '2026-01-01 00:00:00+00' + V * interval '1 second' + (V * 7) % 1000000 * interval '1 microsecond' END"},
				{name: "status", def: "shop.order_status", expr: "(enum_range(NULL::shop.order_status))[1 + V % 4]"},
				{name: "tags", def: "text[]",
					expr: `CASE V % 5 WHEN 0 THEN NULL WHEN 1 THEN '{}'::text[] ELSE ARRAY['t' || V, NULL, 'a "q" \ b', E'tab\there,{x}'] END`},
				{name: "ref", def: "uuid", expr: "CASE WHEN V % 9 = 0 THEN NULL ELSE md5(V::text)::uuid END"},
				{name: "meta", def: "jsonb",
					expr: "jsonb_build_object('v', V, 'name', 'ü ' || V, 'nested', jsonb_build_array(V, NULL, true, 1.5), 'q', E'\"\\\\\\n')"},
				{name: "note", def: "text", expr: `CASE WHEN V % 3 = 0 THEN NULL ELSE E'line1\nline2\ttab\\back ' || V END`},
				{name: "f", def: "double precision", expr: "CASE WHEN V % 29 = 0 THEN 'Infinity'::float8 ELSE V / 3.0 END"},
				{name: "d", def: "date", expr: "date '2026-01-01' + (V % 5000)::int - 2500"},
			},
			ddl: "ALTER TABLE shop.orders REPLICA IDENTITY FULL",
		},
		{
			name: "shop.lines", keyCols: []string{"order_id", "line"},
			keyExprs: map[string]string{"order_id": "K / 10", "line": "(K % 10)::int"},
			cols: []*whColumn{
				{name: "qty", def: "int", expr: "(V % 1000)::int - 500"},
				{name: "price", def: "numeric(10,2)", expr: "CASE WHEN V % 7 = 0 THEN NULL ELSE (V % 100000) / 100.0 END"},
				{name: "ints", def: "int[]", expr: "CASE WHEN V % 4 = 0 THEN NULL ELSE ARRAY[V::int % 100, NULL, -1] END"},
				{name: "flag", def: "boolean", expr: "CASE V % 3 WHEN 0 THEN NULL WHEN 1 THEN true ELSE false END"},
			},
		},
		{
			name: "shop.docs", keyCols: []string{"id"}, keyExprs: map[string]string{"id": "K::int"},
			cols: []*whColumn{
				{name: "title", def: "text", expr: "'doc ' || K || ' v' || V"},
				// 6400 characters of hex: out of line, uncompressed (storage external).
				{name: "body", def: "text", expr: "repeat(md5(K || '-' || V), 200)", keep: true},
				{name: "blob", def: "jsonb", expr: "(SELECT jsonb_agg(md5(g || '/' || V)) FROM generate_series(1, 80) g)", keep: true},
			},
			ddl: "ALTER TABLE shop.docs ALTER COLUMN body SET STORAGE EXTERNAL, ALTER COLUMN blob SET STORAGE EXTERNAL",
		},
	}
}

const whSchemaDDL = `CREATE SCHEMA shop; CREATE TYPE shop.order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled, with comma')`

// createDDL is the table's CREATE TABLE and its other statements.
func (s *whTable) createDDL() string {
	var defs []string
	for _, k := range s.keyCols {
		defs = append(defs, k+" "+s.def(k)+" NOT NULL")
	}
	defs = append(defs, "ver bigint NOT NULL")
	for _, c := range s.cols {
		defs = append(defs, c.name+" "+c.def)
	}
	defs = append(defs, "PRIMARY KEY ("+strings.Join(s.keyCols, ", ")+")")
	q := fmt.Sprintf("CREATE TABLE %s (%s)", s.name, strings.Join(defs, ", "))
	if s.ddl != "" {
		q += "; " + s.ddl
	}
	return q
}

// def is the type of a column of the table.
func (s *whTable) def(col string) string {
	for _, c := range s.cols {
		if c.name == col {
			return c.def
		}
	}
	if col == "line" || (s.name == "shop.docs" && col == "id") {
		return "int"
	}
	return "bigint" // the other keys, and ver
}

// sub replaces K and V in an expression.
func sub(expr, k, v string) string {
	return strings.NewReplacer("K", "("+k+")", "V", "("+v+")").Replace(expr)
}

// keyNumber is the SQL that gives a row's key number back from its key columns.
func (s *whTable) keyNumber() string {
	if len(s.keyCols) == 2 {
		return "order_id * 10 + line"
	}
	return "id::bigint"
}

// keyMatch is "col = expr AND ..." matching the key number k.
func (s *whTable) keyMatch(alias, k string) string {
	var parts []string
	for _, c := range s.keyCols {
		parts = append(parts, alias+c+" = "+sub(s.keyExprs[c], k, ""))
	}
	return strings.Join(parts, " AND ")
}

// allCols is every column in table order: key, ver, values.
func (s *whTable) allCols() []string {
	out := append([]string{}, s.keyCols...)
	out = append(out, "ver")
	for _, c := range s.cols {
		out = append(out, c.name)
	}
	return out
}

// insertFrom inserts one row per (x.k, x.v) of from.
func (s *whTable) insertFrom(from string) string {
	names, vals := []string{}, []string{}
	for _, c := range s.keyCols {
		names, vals = append(names, c), append(vals, sub(s.keyExprs[c], "x.k", ""))
	}
	names, vals = append(names, "ver"), append(vals, "x.v")
	for _, c := range s.cols {
		names, vals = append(names, c.name), append(vals, sub(c.expr, "x.k", "x.v"))
	}
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", s.name, strings.Join(names, ", "), strings.Join(vals, ", "), from)
}

// setList sets ver and the value columns for version x.v of key kExpr; all also
// sets the columns plain updates keep.
func (s *whTable) setList(kExpr string, all bool) string {
	parts := []string{"ver = x.v"}
	for _, c := range s.cols {
		if c.keep && !all {
			continue
		}
		parts = append(parts, c.name+" = "+sub(c.expr, kExpr, "x.v"))
	}
	return strings.Join(parts, ", ")
}

// whChange is one change the workload committed to a key: its op and the row's
// version after it (for a delete: before it, or 0 when the delete carries the key
// only).
type whChange struct {
	op  byte
	ver int64
}

func (c whChange) String() string { return fmt.Sprintf("%c%d", c.op, c.ver) }

// whModel is what the workload committed to one table.
type whModel struct {
	spec    *whTable
	ids     []int64 // live keys, for random choice
	idx     map[int64]int
	ver     map[int64]int64
	hist    map[int64][]whChange // every change, in commit order
	deleted map[int64]int64      // deleted key -> its version when deleted
	nextID  int64
	changes int
}

// whWorkload runs random transactions on the source.
type whWorkload struct {
	t           testing.TB
	conn        *pgx.Conn
	rng         *rand.Rand
	tables      []*whModel
	byName      map[string]*whModel
	nextVer     int64
	undo        []func()
	txns, stmts int
}

// whSeed is the workload's seed: E2E_SEED, or the clock. Logged, for a replay.
func whSeed(t testing.TB) uint64 {
	if v, err := strconv.ParseUint(os.Getenv("E2E_SEED"), 10, 64); err == nil && v != 0 {
		t.Logf("seed %d (from E2E_SEED)", v)
		return v
	}
	s := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay with E2E_SEED=%d)", s, s)
	return s
}

func newWhWorkload(t testing.TB, conn *pgx.Conn, seed uint64) *whWorkload {
	w := &whWorkload{t: t, conn: conn, rng: rand.New(rand.NewPCG(seed, 11)), byName: map[string]*whModel{}, nextVer: 1}
	for _, s := range whTables() {
		m := &whModel{spec: s, idx: map[int64]int{}, ver: map[int64]int64{}, hist: map[int64][]whChange{}, deleted: map[int64]int64{}, nextID: 10}
		w.tables = append(w.tables, m)
		w.byName[s.name] = m
	}
	return w
}

// create creates the schema and the tables.
func (w *whWorkload) create(ctx context.Context) error {
	q := whSchemaDDL
	for _, m := range w.tables {
		q += "; " + m.spec.createDDL()
	}
	_, err := w.conn.Exec(ctx, q)
	return err
}

// --- the model, with an undo log for rolled-back transactions ---

func (w *whWorkload) push(f func()) { w.undo = append(w.undo, f) }

func (w *whWorkload) rollbackModel() {
	for i := len(w.undo) - 1; i >= 0; i-- {
		w.undo[i]()
	}
	w.undo = nil
}

func (m *whModel) record(w *whWorkload, id int64, c whChange) {
	m.hist[id] = append(m.hist[id], c)
	m.changes++
	w.push(func() {
		m.hist[id] = m.hist[id][:len(m.hist[id])-1]
		if len(m.hist[id]) == 0 {
			delete(m.hist, id)
		}
		m.changes--
	})
}

func (m *whModel) set(w *whWorkload, id, ver int64) {
	old, had := m.ver[id]
	if !had {
		m.idx[id] = len(m.ids)
		m.ids = append(m.ids, id)
	}
	m.ver[id] = ver
	w.push(func() {
		if had {
			m.ver[id] = old
		} else {
			m.removeID(id)
			delete(m.ver, id)
		}
	})
}

func (m *whModel) del(w *whWorkload, id int64) {
	old := m.ver[id]
	m.removeID(id)
	delete(m.ver, id)
	m.deleted[id] = old
	w.push(func() {
		delete(m.deleted, id)
		m.idx[id] = len(m.ids)
		m.ids = append(m.ids, id)
		m.ver[id] = old
	})
}

func (m *whModel) removeID(id int64) {
	i := m.idx[id]
	last := m.ids[len(m.ids)-1]
	m.ids[i] = last
	m.idx[last] = i
	m.ids = m.ids[:len(m.ids)-1]
	delete(m.idx, id)
}

func (m *whModel) deleteChange(id int64) whChange {
	if m.spec.full {
		return whChange{'d', m.ver[id]}
	}
	return whChange{'d', 0}
}

// --- statements ---

type whExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// preload inserts n rows into a table before connectd first runs: the snapshot
// delivers them as r.
func (w *whWorkload) preload(ctx context.Context, table string, n int) error {
	m := w.byName[table]
	ids, vers := w.newRows(m, n)
	if _, err := w.conn.Exec(ctx, m.spec.insertFrom("unnest($1::bigint[], $2::bigint[]) AS x(k, v)"), ids, vers); err != nil {
		return fmt.Errorf("preload %s: %w", table, err)
	}
	for i := range ids {
		m.set(w, ids[i], vers[i])
		m.record(w, ids[i], whChange{'r', vers[i]})
	}
	w.undo = nil
	return nil
}

// newRows numbers n new keys of a table, each with a new version.
func (w *whWorkload) newRows(m *whModel, n int) (ids, vers []int64) {
	for i := 0; i < n; i++ {
		ids = append(ids, m.nextID)
		m.nextID++
	}
	return ids, w.newVers(n)
}

// newVers numbers n new versions.
func (w *whWorkload) newVers(n int) []int64 {
	vers := make([]int64, n)
	for i := range vers {
		vers[i] = w.nextVer
		w.nextVer++
	}
	return vers
}

// steps runs n random transactions.
func (w *whWorkload) steps(ctx context.Context, n int) error {
	for i := 0; i < n; i++ {
		if err := w.step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// step runs one transaction: one statement in autocommit, or several in a
// transaction that commits, or now and then rolls back.
func (w *whWorkload) step(ctx context.Context) error {
	if w.rng.IntN(3) == 0 {
		return w.commitOne(ctx)
	}
	w.undo = nil
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return err
	}
	for i := 0; i < 2+w.rng.IntN(8); i++ {
		if err := w.op(ctx, tx); err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
	}
	if w.rng.IntN(8) == 0 {
		w.rollbackModel()
		return tx.Rollback(ctx)
	}
	w.txns++
	return tx.Commit(ctx)
}

// commitOne runs one random statement in autocommit: a transaction that changes at
// least one row.
func (w *whWorkload) commitOne(ctx context.Context) error {
	w.undo = nil
	if err := w.op(ctx, w.conn); err != nil {
		return err
	}
	w.txns++
	return nil
}

// op runs one random statement and records what it changed.
func (w *whWorkload) op(ctx context.Context, db whExecer) error {
	m := w.tables[w.rng.IntN(len(w.tables))]
	s := m.spec
	w.stmts++
	exec := func(want int, q string, args ...any) error {
		tag, err := db.Exec(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("workload: %s: %w", q, err)
		}
		if int(tag.RowsAffected()) != want {
			return fmt.Errorf("workload: %s changed %d rows, the model expected %d", q, tag.RowsAffected(), want)
		}
		return nil
	}
	pick := func(n int) []int64 {
		seen := map[int64]bool{}
		var out []int64
		for i := 0; i < n && len(out) < len(m.ids)-5; i++ {
			id := m.ids[w.rng.IntN(len(m.ids))]
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
		return out
	}
	r := w.rng.IntN(100)
	if len(m.ids) < 30 {
		r = 0
	}
	switch {
	case r < 25: // inserts, one statement
		ids, vers := w.newRows(m, 1+w.rng.IntN(3)*w.rng.IntN(10))
		if err := exec(len(ids), s.insertFrom("unnest($1::bigint[], $2::bigint[]) AS x(k, v)"), ids, vers); err != nil {
			return err
		}
		for i := range ids {
			m.set(w, ids[i], vers[i])
			m.record(w, ids[i], whChange{'c', vers[i]})
		}
	case r < 60: // updates, one statement; a rewrite also sets the kept (TOAST) columns
		ids := pick(1 + w.rng.IntN(3)*w.rng.IntN(8))
		vers := w.newVers(len(ids))
		all := w.rng.IntN(5) == 0
		q := fmt.Sprintf("UPDATE %s AS t SET %s FROM unnest($1::bigint[], $2::bigint[]) AS x(k, v) WHERE %s",
			s.name, s.setList("x.k", all), s.keyMatch("t.", "x.k"))
		if err := exec(len(ids), q, ids, vers); err != nil {
			return err
		}
		for i := range ids {
			m.set(w, ids[i], vers[i])
			m.record(w, ids[i], whChange{'u', vers[i]})
		}
	case r < 72: // a key change: the source sends a delete of the old key, an insert of the new
		// (of shop.docs without its TOAST values under the default replica identity)
		old := pick(1)
		ids, vers := w.newRows(m, 1)
		var set []string
		for _, c := range s.keyCols {
			set = append(set, c+" = "+sub(s.keyExprs[c], "x.nk", ""))
		}
		q := fmt.Sprintf("UPDATE %s AS t SET %s, %s FROM (SELECT $1::bigint AS k, $2::bigint AS nk, $3::bigint AS v) AS x WHERE %s",
			s.name, strings.Join(set, ", "), s.setList("x.nk", false), s.keyMatch("t.", "x.k"))
		if err := exec(1, q, old[0], ids[0], vers[0]); err != nil {
			return err
		}
		m.record(w, old[0], m.deleteChange(old[0]))
		m.del(w, old[0])
		m.set(w, ids[0], vers[0])
		m.record(w, ids[0], whChange{'c', vers[0]})
	default: // deletes, one statement
		ids := pick(1 + w.rng.IntN(2)*w.rng.IntN(6))
		q := fmt.Sprintf("DELETE FROM %s AS t USING unnest($1::bigint[]) AS x(k) WHERE %s", s.name, s.keyMatch("t.", "x.k"))
		if err := exec(len(ids), q, ids); err != nil {
			return err
		}
		for _, id := range ids {
			m.record(w, id, m.deleteChange(id))
			m.del(w, id)
		}
	}
	return nil
}

// addColumn adds a column to a table on the source; the rows written from now on set
// it (the rows before keep NULL, on the source as on the target).
func (w *whWorkload) addColumn(ctx context.Context, table, name, def, expr string) error {
	m := w.byName[table]
	if _, err := w.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", table, name, def)); err != nil {
		return err
	}
	m.spec.cols = append(m.spec.cols, &whColumn{name: name, def: def,
		expr: fmt.Sprintf("CASE WHEN V >= %d THEN %s END", w.nextVer, expr)})
	return nil
}
