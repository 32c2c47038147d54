package fault

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// sourceRows runs a query on the source database whose first column is the key and
// the others text, and returns the rows by key, NULL rendered as "NULL".
type sourceRows func(q string) (map[int64][]string, error)

// pgRows is sourceRows on a PostgreSQL connection.
func pgRows(conn *pgx.Conn) sourceRows {
	return func(q string) (map[int64][]string, error) {
		rows, err := conn.Query(context.Background(), q)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return keyedRows(rows, len(rows.FieldDescriptions())-1)
	}
}

// sqlRows is sourceRows on a database/sql database (a DuckDB file).
func sqlRows(db *sql.DB) sourceRows {
	return func(q string) (map[int64][]string, error) {
		rows, err := db.Query(q)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return nil, err
		}
		return keyedRows(rows, len(cols)-1)
	}
}

// scanner is what pgx and database/sql rows both are.
type scanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// keyedRows reads rows of a key and n text columns, by key.
func keyedRows(rows scanner, n int) (map[int64][]string, error) {
	out := map[int64][]string{}
	for rows.Next() {
		vals := make([]*string, n)
		var id int64
		dest := []any{&id}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out[id] = nullText(vals)
	}
	return out, rows.Err()
}

func nullText(vals []*string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		if v == nil {
			out[i] = "NULL"
		} else {
			out[i] = *v
		}
	}
	return out
}

// counts is the outcome of reconciling one lake with the workload's log.
type counts struct {
	checked, missing, duplicates, unexpected, misordered, dupPos, stateDiffs int
}

func (c counts) String() string {
	return fmt.Sprintf("changes checked: %d, missing: %d, duplicates: %d, unexpected: %d, out of order keys: %d, _pos twice: %d, rows differing from the source: %d",
		c.checked, c.missing, c.duplicates, c.unexpected, c.misordered, c.dupPos, c.stateDiffs)
}

func (c counts) clean() bool {
	return c.missing == 0 && c.duplicates == 0 && c.unexpected == 0 && c.misordered == 0 && c.dupPos == 0 && c.stateDiffs == 0
}

// lakeRecord is one lake row as the check needs it.
type lakeRecord struct {
	op   byte
	pos  string
	id   sql.NullInt64
	ver  sql.NullInt64
	cols []sql.NullString
}

// problems collects failure details, keeping the first few of each kind readable.
type problems struct {
	t     *testing.T
	label string
	shown map[string]int
}

func (p *problems) add(kind, format string, args ...any) {
	p.t.Helper()
	if p.shown[kind]++; p.shown[kind] <= 15 {
		p.t.Errorf("%s: %s: "+format, append([]any{p.label, kind}, args...)...)
	}
}

// reconcile reads every table of the lake under root and checks it against the model
// (each committed change exactly once, per key in commit order) and against the
// source tables (the lake rebuilt equals the source, column by column).
func reconcile(t *testing.T, root string, m *model, src sourceRows, label string) counts {
	t.Helper()
	db := lakedb.DuckDB(t)
	p := &problems{t: t, label: label, shown: map[string]int{}}
	var c counts
	posSeen := map[string]string{}
	for _, tm := range m.tables {
		ns, table, _ := strings.Cut(tm.spec.name, ".")
		recs := readLake(t, db, filepath.Join(root, ns, table), tm.spec)
		for _, r := range recs {
			if prev, ok := posSeen[r.pos]; ok {
				c.dupPos++
				p.add("_pos twice", "_pos %s in %s and in %s", r.pos, prev, tm.spec.name)
			}
			posSeen[r.pos] = tm.spec.name
		}
		checkChanges(p, tm, recs, &c)
		checkState(t, p, tm, recs, src, &c)
	}
	return c
}

// readLake reads one table of the lake in _pos order.
func readLake(t *testing.T, db *sql.DB, dir string, s *tableSpec) []lakeRecord {
	t.Helper()
	if !hasParquet(t, dir) {
		return nil
	}
	return readDuckRecords(t, db, lakedb.ParquetTree(dir), s)
}

// readDuckRecords reads a change log in DuckDB (a lake table, or an append table of
// the duckdb destination) in _pos order, the value columns rendered by lakeCols.
func readDuckRecords(t *testing.T, db *sql.DB, from string, s *tableSpec) []lakeRecord {
	t.Helper()
	sel := []string{"_op", "_pos", "CAST(id AS BIGINT)", "CAST(ver AS BIGINT)"}
	sel = append(sel, s.lakeCols...)
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + from + " ORDER BY _pos"
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("duckdb: %s: %v", q, err)
	}
	defer rows.Close()
	out, err := changeRecords(rows, len(s.lakeCols))
	if err != nil {
		t.Fatalf("duckdb: %s: %v", q, err)
	}
	return out
}

// changeRecords reads rows of _op, _pos, id, ver and n value columns.
func changeRecords(rows scanner, n int) ([]lakeRecord, error) {
	var out []lakeRecord
	for rows.Next() {
		var r lakeRecord
		var op string
		r.cols = make([]sql.NullString, n)
		dest := []any{&op, &r.pos, &r.id, &r.ver}
		for i := range r.cols {
			dest = append(dest, &r.cols[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if len(op) != 1 {
			return nil, fmt.Errorf("_op %q at _pos %s", op, r.pos)
		}
		r.op = op[0]
		out = append(out, r)
	}
	return out, rows.Err()
}

func hasParquet(t *testing.T, dir string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && strings.HasSuffix(path, ".parquet") {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil && !found {
		if errors.Is(err, fs.ErrNotExist) {
			return false
		}
		t.Fatalf("list %s: %v", dir, err)
	}
	return found
}

// checkChanges compares, key by key, the records of the lake with the changes the
// workload committed: each change must appear exactly once, in commit order.
func checkChanges(p *problems, tm *tableModel, recs []lakeRecord, c *counts) {
	lake := map[int64][]change{}
	lakePos := map[int64][]string{}
	truncs := 0
	for _, r := range recs {
		switch r.op {
		case 't':
			truncs++
			continue
		case 'r', 'c', 'u', 'd':
		default:
			p.add("bad op", "%s: _op %q at _pos %s", tm.spec.name, r.op, r.pos)
			continue
		}
		if !r.id.Valid {
			p.add("bad record", "%s: %c record without id at _pos %s", tm.spec.name, r.op, r.pos)
			continue
		}
		ch := change{op: r.op}
		if r.op != 'd' || tm.spec.full {
			ch.ver = r.ver.Int64
		}
		lake[r.id.Int64] = append(lake[r.id.Int64], ch)
		lakePos[r.id.Int64] = append(lakePos[r.id.Int64], r.pos)
	}
	c.checked += tm.truncates
	if truncs < tm.truncates {
		c.missing += tm.truncates - truncs
		p.add("missing", "%s: %d truncates committed, %d in the lake", tm.spec.name, tm.truncates, truncs)
	} else if truncs > tm.truncates {
		c.duplicates += truncs - tm.truncates
		p.add("duplicate", "%s: %d truncates committed, %d in the lake", tm.spec.name, tm.truncates, truncs)
	}
	keys := map[int64]bool{}
	for id := range tm.hist {
		keys[id] = true
	}
	for id := range lake {
		keys[id] = true
	}
	sorted := make([]int64, 0, len(keys))
	for id := range keys {
		sorted = append(sorted, id)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for _, id := range sorted {
		want, got := tm.hist[id], lake[id]
		c.checked += len(want)
		cw, cg := map[change]int{}, map[change]int{}
		for _, ch := range want {
			cw[ch]++
		}
		for _, ch := range got {
			cg[ch]++
		}
		bad := false
		for ch, n := range cw {
			if cg[ch] < n {
				c.missing += n - cg[ch]
				bad = true
				p.add("missing", "%s id %d: change %v committed %d time(s), %d in the lake; committed %v, lake %v at %v",
					tm.spec.name, id, ch, n, cg[ch], want, got, lakePos[id])
			}
		}
		for ch, n := range cg {
			switch {
			case cw[ch] == 0:
				c.unexpected += n
				bad = true
				p.add("unexpected", "%s id %d: lake has %v, never committed; committed %v, lake %v at %v",
					tm.spec.name, id, ch, want, got, lakePos[id])
			case n > cw[ch]:
				c.duplicates += n - cw[ch]
				bad = true
				p.add("duplicate", "%s id %d: change %v in the lake %d times, committed %d; lake %v at %v",
					tm.spec.name, id, ch, n, cw[ch], got, lakePos[id])
			}
		}
		if !bad && fmt.Sprint(want) != fmt.Sprint(got) {
			c.misordered++
			p.add("out of order", "%s id %d: committed %v, lake (by _pos) %v at %v", tm.spec.name, id, want, got, lakePos[id])
		}
	}
}

// checkState rebuilds the table from the lake (latest _pos per key, deletes applied,
// truncates honoured) and compares it with the source table, column by column.
func checkState(t *testing.T, p *problems, tm *tableModel, recs []lakeRecord, srcRows sourceRows, c *counts) {
	t.Helper()
	state := map[int64][]string{}
	render := func(r lakeRecord) []string {
		out := []string{fmt.Sprint(r.ver.Int64)}
		for _, v := range r.cols {
			if v.Valid {
				out = append(out, v.String)
			} else {
				out = append(out, "NULL")
			}
		}
		return out
	}
	for _, r := range recs {
		switch r.op {
		case 'r', 'c', 'u':
			state[r.id.Int64] = render(r)
		case 'd':
			delete(state, r.id.Int64)
		case 't':
			clear(state)
		}
	}
	q := "SELECT id, " + tm.spec.srcVer + ", " + strings.Join(tm.spec.srcCols, ", ") + " FROM " + tm.spec.name
	src, err := srcRows(q)
	if err != nil {
		t.Fatalf("source: %s: %v", q, err)
	}
	names := append([]string{"ver"}, tm.spec.cols...)
	for id, want := range src {
		got, ok := state[id]
		if !ok {
			c.stateDiffs++
			p.add("state", "%s id %d is in the source (%v) but not in the rebuilt lake", tm.spec.name, id, want)
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				c.stateDiffs++
				p.add("state", "%s id %d column %s: lake %q, source %q", tm.spec.name, id, names[i], got[i], want[i])
				break
			}
		}
	}
	for id, got := range state {
		if _, ok := src[id]; !ok {
			c.stateDiffs++
			p.add("state", "%s id %d is in the rebuilt lake (%v) but not in the source", tm.spec.name, id, got)
		}
	}
	if len(src) != len(tm.live.ids) {
		t.Errorf("%s: the source has %d rows, the workload's model %d: the test's model is wrong", tm.spec.name, len(src), len(tm.live.ids))
	}
}
