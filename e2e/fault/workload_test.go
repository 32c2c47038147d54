package fault

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// change is one record the lake must hold for a key: its op and the row version the
// workload wrote (0 where the record carries none: a delete under the default replica
// identity has only the key).
type change struct {
	op  byte
	ver int64
}

func (c change) String() string { return fmt.Sprintf("%c:%d", c.op, c.ver) }

// tableSpec describes one workload table. Every value column is computed by SQL from
// the row version (V in the expressions), so the workload only tracks (key, version)
// and the final comparison reads both sides from their databases.
type tableSpec struct {
	name string // schema-qualified
	full bool   // REPLICA IDENTITY FULL: deletes carry the whole old row
	cols []string
	expr []string // SQL per column, with V standing for the version expression
	// lakeCols and srcCols render the value columns as comparable text in DuckDB and
	// in the source database (same order); srcVer renders ver there.
	lakeCols, srcCols []string
	srcVer            string
}

// pgSpecs are the PostgreSQL workload's tables.
var pgSpecs = []*tableSpec{
	{
		name: "fault.accounts", full: true, srcVer: "ver::text",
		cols: []string{"name", "amount", "flag", "ts", "doc", "raw"},
		expr: []string{
			`'acct ' || V || ' ü''"'`,
			`((V * 37) % 10000000) / 100.0 - 50000`,
			`(V % 2 = 0)`,
			`timestamptz '2026-01-01 00:00:00+00' + V * interval '1 millisecond' + (V % 997) * interval '1 microsecond'`,
			`jsonb_build_object('v', V, 'tag', 't' || (V % 13))`,
			`decode(md5(V::text), 'hex')`,
		},
		lakeCols: []string{"name", "CAST(amount AS VARCHAR)", "CAST(flag AS VARCHAR)", "CAST(epoch_us(ts) AS VARCHAR)", "CAST(doc AS VARCHAR)", "lower(hex(raw))"},
		srcCols:  []string{"name", "amount::text", "flag::text", "(extract(epoch FROM ts) * 1000000)::bigint::text", "doc::text", "encode(raw, 'hex')"},
	},
	{
		name: "fault.events", srcVer: "ver::text",
		cols: []string{"note", "qty", "day", "f8"},
		expr: []string{
			`CASE WHEN V % 7 = 0 THEN NULL ELSE 'note ' || V END`,
			`(V % 100000)::int`,
			`date '2026-01-01' + (V % 3000)::int`,
			`V / 4.0`,
		},
		lakeCols: []string{"note", "CAST(qty AS VARCHAR)", "CAST(day AS VARCHAR)", "CAST(CAST(f8 AS DECIMAL(20, 2)) AS VARCHAR)"},
		srcCols:  []string{"note", "qty::text", "day::text", "f8::numeric(20, 2)::text"},
	},
	{
		name:     "fault.scratch",
		srcVer:   "ver::text",
		cols:     []string{"note"},
		expr:     []string{`'s' || V`},
		lakeCols: []string{"note"},
		srcCols:  []string{"note"},
	},
}

const schemaDDL = `CREATE SCHEMA fault;
CREATE TABLE fault.accounts (id bigint PRIMARY KEY, ver bigint NOT NULL, name text, amount numeric(12,2),
  flag boolean, ts timestamptz, doc jsonb, raw bytea);
ALTER TABLE fault.accounts REPLICA IDENTITY FULL;
CREATE TABLE fault.events (id bigint PRIMARY KEY, ver bigint NOT NULL, note text, qty int, day date, f8 double precision);
CREATE TABLE fault.scratch (id bigint PRIMARY KEY, ver bigint NOT NULL, note text);`

// values renders the value-column expressions for a version expression.
func (s *tableSpec) values(v string) []string {
	out := make([]string, len(s.expr))
	for i, e := range s.expr {
		out[i] = strings.ReplaceAll(e, "V", "("+v+")")
	}
	return out
}

// insertSelect is INSERT INTO table SELECT idExpr, verExpr, values FROM from.
func (s *tableSpec) insertSelect(idExpr, verExpr, from string) string {
	return fmt.Sprintf("INSERT INTO %s (id, ver, %s) SELECT %s, %s, %s FROM %s",
		s.name, strings.Join(s.cols, ", "), idExpr, verExpr, strings.Join(s.values(verExpr), ", "), from)
}

// setList is ver = verExpr, col = expr, ... for an UPDATE.
func (s *tableSpec) setList(verExpr string) string {
	parts := []string{"ver = " + verExpr}
	for i, e := range s.values(verExpr) {
		parts = append(parts, s.cols[i]+" = "+e)
	}
	return strings.Join(parts, ", ")
}

// keySet is the live keys of a table, with O(1) random choice.
type keySet struct {
	ids []int64
	idx map[int64]int
}

func (k *keySet) add(id int64) {
	k.idx[id] = len(k.ids)
	k.ids = append(k.ids, id)
}

func (k *keySet) remove(id int64) {
	i := k.idx[id]
	last := k.ids[len(k.ids)-1]
	k.ids[i] = last
	k.idx[last] = i
	k.ids = k.ids[:len(k.ids)-1]
	delete(k.idx, id)
}

// tableModel is what the workload has committed to one table.
type tableModel struct {
	spec      *tableSpec
	live      keySet
	ver       map[int64]int64    // live key -> current version
	hist      map[int64][]change // key -> every record the lake must hold, in order
	truncates int
	nextID    int64
}

// model is the workload's log of every committed change, the oracle of the check.
type model struct {
	tables  []*tableModel
	byName  map[string]*tableModel
	nextVer int64
	changes int64 // records the lake must hold (snapshot rows included)
}

func newModel(specs []*tableSpec) *model {
	m := &model{byName: map[string]*tableModel{}, nextVer: 1}
	for _, s := range specs {
		tm := &tableModel{spec: s, live: keySet{idx: map[int64]int{}}, ver: map[int64]int64{}, hist: map[int64][]change{}, nextID: 1}
		m.tables = append(m.tables, tm)
		m.byName[s.name] = tm
	}
	return m
}

// undo reverts the model changes of a rolled-back transaction.
type undo []func()

func (u *undo) push(f func()) { *u = append(*u, f) }

func (u *undo) run() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
	*u = nil
}

func (tm *tableModel) record(u *undo, m *model, id int64, c change) {
	tm.hist[id] = append(tm.hist[id], c)
	m.changes++
	u.push(func() {
		h := tm.hist[id]
		tm.hist[id] = h[:len(h)-1]
		if len(tm.hist[id]) == 0 {
			delete(tm.hist, id)
		}
		m.changes--
	})
}

func (tm *tableModel) set(u *undo, id, ver int64) {
	old, had := tm.ver[id]
	if !had {
		tm.live.add(id)
	}
	tm.ver[id] = ver
	u.push(func() {
		if had {
			tm.ver[id] = old
		} else {
			delete(tm.ver, id)
			tm.live.remove(id)
		}
	})
}

func (tm *tableModel) del(u *undo, id int64) {
	old := tm.ver[id]
	delete(tm.ver, id)
	tm.live.remove(id)
	u.push(func() {
		tm.ver[id] = old
		tm.live.add(id)
	})
}

func (tm *tableModel) deleteChange(id int64) change {
	if tm.spec.full {
		return change{'d', tm.ver[id]}
	}
	return change{'d', 0}
}

// preload fills a table before connectd first starts: n rows that the snapshot must
// deliver as op r.
func (m *model) preload(ctx context.Context, conn *pgx.Conn, table string, n int64) error {
	tm := m.byName[table]
	id0, ver0 := tm.nextID, m.nextVer
	from := fmt.Sprintf("generate_series(%d, %d) g", id0, id0+n-1)
	q := tm.spec.insertSelect("g", fmt.Sprintf("g + %d", ver0-id0), from)
	if _, err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("preload %s: %w", table, err)
	}
	var u undo
	for i := int64(0); i < n; i++ {
		tm.set(&u, id0+i, ver0+i)
		tm.record(&u, m, id0+i, change{'r', ver0 + i})
	}
	tm.nextID += n
	m.nextVer += n
	return nil
}

// workload runs random transactions on one connection until stopped. Every
// transaction holds mu, so a fault that restarts the server can wait for a quiet
// moment and the workload never has a commit with an unknown outcome.
type workload struct {
	dsn  string
	conn *pgx.Conn
	rng  *rand.Rand
	m    *model

	mu        sync.Mutex
	stopCh    chan struct{}
	done      chan struct{}
	err       error
	bigReq    chan int64 // one transaction inserting this many rows
	bigDone   chan struct{}
	committed atomic.Int64 // committed records, for the backpressure check
	txns      atomic.Int64
	pace      time.Duration
}

func newWorkload(ctx context.Context, dsn string, seed int64, m *model) (*workload, error) {
	w := &workload{dsn: dsn, rng: rand.New(rand.NewSource(seed)), m: m,
		stopCh: make(chan struct{}), done: make(chan struct{}), bigReq: make(chan int64, 1), bigDone: make(chan struct{}, 1),
		pace: 2 * time.Millisecond}
	if err := w.reconnect(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// reconnect replaces the connection (after a server restart); call with mu held.
func (w *workload) reconnect(ctx context.Context) error {
	if w.conn != nil {
		w.conn.Close(context.Background())
	}
	var err error
	for i := 0; i < 50; i++ {
		if w.conn, err = pgx.Connect(ctx, w.dsn); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("workload: connect: %w", err)
}

func (w *workload) start() {
	go func() {
		defer close(w.done)
		ctx := context.Background()
		for {
			select {
			case <-w.stopCh:
				return
			case n := <-w.bigReq:
				w.mu.Lock()
				err := w.big(ctx, n)
				w.mu.Unlock()
				w.bigDone <- struct{}{}
				if err != nil {
					w.err = err
					return
				}
				continue
			default:
			}
			w.mu.Lock()
			err := w.step(ctx)
			w.mu.Unlock()
			if err != nil {
				w.err = err
				return
			}
			time.Sleep(time.Duration(w.rng.Int63n(int64(w.pace) + 1)))
		}
	}()
}

// stop ends the workload and returns its error, if it failed.
func (w *workload) stop() error {
	close(w.stopCh)
	<-w.done
	w.conn.Close(context.Background())
	return w.err
}

// failed returns the workload's error once it has stopped on one.
func (w *workload) failed() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// big runs one transaction inserting n rows into fault.events.
func (w *workload) big(ctx context.Context, n int64) error {
	tm := w.m.byName["fault.events"]
	id0, ver0 := tm.nextID, w.m.nextVer
	q := tm.spec.insertSelect("g", fmt.Sprintf("g + %d", ver0-id0), fmt.Sprintf("generate_series(%d, %d) g", id0, id0+n-1))
	if _, err := w.conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("workload: big transaction of %d rows: %w", n, err)
	}
	var u undo
	for i := int64(0); i < n; i++ {
		tm.set(&u, id0+i, ver0+i)
		tm.record(&u, w.m, id0+i, change{'c', ver0 + i})
	}
	tm.nextID += n
	w.m.nextVer += n
	w.committed.Add(n)
	w.txns.Add(1)
	return nil
}

// step runs one random transaction: a single statement in autocommit, or a
// multi-statement transaction that commits (or, sometimes, rolls back).
func (w *workload) step(ctx context.Context) error {
	var u undo
	before := w.m.changes
	switch r := w.rng.Intn(100); {
	case r < 45:
		if err := w.op(ctx, w.conn, &u); err != nil {
			return err
		}
	default:
		tx, err := w.conn.Begin(ctx)
		if err != nil {
			return fmt.Errorf("workload: begin: %w", err)
		}
		n := 2 + w.rng.Intn(30)
		for i := 0; i < n; i++ {
			if err := w.op(ctx, tx, &u); err != nil {
				_ = tx.Rollback(ctx)
				return err
			}
		}
		if w.rng.Intn(10) == 0 {
			if err := tx.Rollback(ctx); err != nil {
				return fmt.Errorf("workload: rollback: %w", err)
			}
			u.run()
			return nil
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("workload: commit: %w", err)
		}
	}
	w.committed.Add(w.m.changes - before)
	w.txns.Add(1)
	return nil
}

// execer is a connection or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// op runs one random statement and records what it changes.
func (w *workload) op(ctx context.Context, db execer, u *undo) error {
	m := w.m
	// accounts and events take most of the traffic; scratch is small and is truncated.
	var tm *tableModel
	switch r := w.rng.Intn(20); {
	case r < 9:
		tm = m.byName["fault.accounts"]
	case r < 18:
		tm = m.byName["fault.events"]
	default:
		tm = m.byName["fault.scratch"]
	}
	s := tm.spec
	exec := func(q string, args ...any) (int64, error) {
		tag, err := db.Exec(ctx, q, args...)
		if err != nil {
			return 0, fmt.Errorf("workload: %s: %w", q, err)
		}
		return tag.RowsAffected(), nil
	}
	want := func(got, n int64, what string) error {
		if got != n {
			return fmt.Errorf("workload: %s on %s changed %d rows, the model expected %d", what, s.name, got, n)
		}
		return nil
	}
	newVer := func() int64 { v := m.nextVer; m.nextVer++; return v }
	newID := func() int64 { id := tm.nextID; tm.nextID++; return id }
	live := len(tm.live.ids)
	pick := func() int64 { return tm.live.ids[w.rng.Intn(len(tm.live.ids))] }
	// Keep tables from emptying or growing without bound: inserts win when few rows live.
	r := w.rng.Intn(100)
	if live < 20 {
		r = 0
	}
	switch {
	case s.name == "fault.scratch" && r >= 97:
		if _, err := exec("TRUNCATE " + s.name); err != nil {
			return err
		}
		ids := append([]int64(nil), tm.live.ids...)
		for _, id := range ids {
			tm.del(u, id)
		}
		tm.truncates++
		m.changes++
		u.push(func() { tm.truncates--; m.changes-- })
	case r < 25: // single-row insert
		id, v := newID(), newVer()
		n, err := exec(s.insertSelect("$1::bigint", "$2::bigint", "(SELECT 1) one"), id, v)
		if err != nil {
			return err
		}
		if err := want(n, 1, "insert"); err != nil {
			return err
		}
		tm.set(u, id, v)
		tm.record(u, m, id, change{'c', v})
	case r < 35: // multi-row insert in one statement
		k := 2 + w.rng.Intn(40)
		ids, vers := make([]int64, k), make([]int64, k)
		for i := range ids {
			ids[i], vers[i] = newID(), newVer()
		}
		n, err := exec(s.insertSelect("x.id", "x.ver", "unnest($1::bigint[], $2::bigint[]) AS x(id, ver)"), ids, vers)
		if err != nil {
			return err
		}
		if err := want(n, int64(k), "multi-row insert"); err != nil {
			return err
		}
		for i := range ids {
			tm.set(u, ids[i], vers[i])
			tm.record(u, m, ids[i], change{'c', vers[i]})
		}
	case r < 60: // single-row update
		id, v := pick(), newVer()
		n, err := exec("UPDATE "+s.name+" SET "+s.setList("$2::bigint")+" WHERE id = $1", id, v)
		if err != nil {
			return err
		}
		if err := want(n, 1, "update"); err != nil {
			return err
		}
		tm.set(u, id, v)
		tm.record(u, m, id, change{'u', v})
	case r < 72: // multi-row update in one statement
		seen := map[int64]bool{}
		var ids, vers []int64
		for i := 0; i < 2+w.rng.Intn(30); i++ {
			id := pick()
			if !seen[id] {
				seen[id] = true
				ids, vers = append(ids, id), append(vers, newVer())
			}
		}
		q := "UPDATE " + s.name + " SET " + s.setList("x.ver") + " FROM unnest($1::bigint[], $2::bigint[]) AS x(id, ver) WHERE " + s.name + ".id = x.id"
		n, err := exec(q, ids, vers)
		if err != nil {
			return err
		}
		if err := want(n, int64(len(ids)), "multi-row update"); err != nil {
			return err
		}
		for i := range ids {
			tm.set(u, ids[i], vers[i])
			tm.record(u, m, ids[i], change{'u', vers[i]})
		}
	case r < 80: // key-changing update: a delete of the old key, an insert of the new
		old, id, v := pick(), newID(), newVer()
		n, err := exec("UPDATE "+s.name+" SET id = $3, "+s.setList("$2::bigint")+" WHERE id = $1", old, v, id)
		if err != nil {
			return err
		}
		if err := want(n, 1, "key-changing update"); err != nil {
			return err
		}
		tm.record(u, m, old, tm.deleteChange(old))
		tm.del(u, old)
		tm.set(u, id, v)
		tm.record(u, m, id, change{'c', v})
	case r < 92: // single-row delete
		id := pick()
		n, err := exec("DELETE FROM "+s.name+" WHERE id = $1", id)
		if err != nil {
			return err
		}
		if err := want(n, 1, "delete"); err != nil {
			return err
		}
		tm.record(u, m, id, tm.deleteChange(id))
		tm.del(u, id)
	default: // multi-row delete
		seen := map[int64]bool{}
		var ids []int64
		for i := 0; i < 2+w.rng.Intn(10) && len(ids) < live-10; i++ {
			id := pick()
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		n, err := exec("DELETE FROM "+s.name+" WHERE id = ANY($1::bigint[])", ids)
		if err != nil {
			return err
		}
		if err := want(n, int64(len(ids)), "multi-row delete"); err != nil {
			return err
		}
		for _, id := range ids {
			tm.record(u, m, id, tm.deleteChange(id))
			tm.del(u, id)
		}
	}
	return nil
}
