package warehouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

var (
	_ connector.Destination   = (*Destination)(nil)
	_ connector.Transactional = (*Destination)(nil)
)

// Destination loads records into target tables; it is the connector.Destination of
// every warehouse destination kind.
type Destination struct {
	name    string // the connector's name, its key in the offsets table
	conn    Conn
	d       Dialect
	layout  Layout
	log     *slog.Logger
	offsets string // the qualified offsets table

	committed record.Position // what the target's offsets table holds for the connector
	last      record.Position // the last record written
	tables    map[Target]*table
	bound     map[*record.Schema]*binding
	staged    []*table // tables with records or statements for the next flush
	rows      int64
	bytes     int64
	broken    error // a failed flush leaves the session unusable: reopen
}

// Open prepares the target schema and its offsets table, and reads the connector's
// committed position. It owns conn from then on.
func Open(ctx context.Context, conn Conn, d Dialect, layout Layout, name string, log *slog.Logger) (*Destination, error) {
	w := &Destination{name: name, conn: conn, d: d, layout: layout, log: log,
		offsets: qualified(d, layout.Schema, OffsetsTable),
		tables:  map[Target]*table{}, bound: map[*record.Schema]*binding{}}
	if err := w.prepare(ctx); err != nil {
		return nil, errors.Join(err, conn.Close(ctx))
	}
	return w, nil
}

func (w *Destination) prepare(ctx context.Context) error {
	ts, err := w.d.ColumnType(record.Type{Kind: record.KindTimestampTZ})
	if err != nil {
		return err
	}
	text, err := w.d.ColumnType(record.Type{Kind: record.KindString})
	if err != nil {
		return err
	}
	if err := ensureSchema(ctx, w.conn, w.d, w.layout.Schema); err != nil {
		return fmt.Errorf("create the target schema %s: %w", w.layout.Schema, err)
	}
	q := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (connector %s PRIMARY KEY, position %s NOT NULL, committed_at %s NOT NULL)",
		w.offsets, text, w.d.PositionType(), ts)
	if _, err := w.conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("create the offsets table %s: %w", w.offsets, err)
	}
	var pos string
	found, err := w.conn.QueryRow(ctx, "SELECT position FROM "+w.offsets+" WHERE connector = $1", []any{w.name}, &pos)
	if err != nil {
		return fmt.Errorf("read the committed position from %s: %w", w.offsets, err)
	}
	if found {
		if w.committed, err = record.ParsePosition(pos); err != nil {
			return connector.Permanent(fmt.Errorf("%s holds %q for connector %s, which is not a position: %w", w.offsets, pos, w.name, err))
		}
	}
	return nil
}

// ensureSchema creates a schema that does not exist. It asks first: creating one,
// even with IF NOT EXISTS, needs a privilege on the database that a user loading into
// an existing schema need not have.
func ensureSchema(ctx context.Context, c Conn, d Dialect, schema string) error {
	var n int64
	if _, err := c.QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", []any{schema}, &n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+d.Ident(schema))
	return err
}

// Committed returns the position the target holds for the connector.
func (w *Destination) Committed(context.Context) (record.Position, error) { return w.committed, nil }

// Write stages records for the next flush. Records at or before the committed
// position are already in the target and are skipped, so a replay changes nothing;
// Buffered still counts them, as records written that the next flush settles.
func (w *Destination) Write(ctx context.Context, recs []record.Record) error {
	if w.broken != nil {
		return w.broken
	}
	for i := range recs {
		r := &recs[i]
		if w.committed != nil && r.Pos.Compare(w.committed) <= 0 {
			w.rows++ // written, as far as the runtime's flush limits go
			continue
		}
		b, err := w.bind(ctx, r.Schema)
		if err != nil {
			return err
		}
		if len(b.t.rows) == 0 && b.t.truncAt == nil && len(b.t.ddl) == 0 {
			w.stage(b.t)
		}
		w.bytes += b.t.stage(b, r)
		w.rows++
		w.last = r.Pos
	}
	return nil
}

func (w *Destination) stage(t *table) {
	for _, s := range w.staged {
		if s == t {
			return
		}
	}
	w.staged = append(w.staged, t)
}

// Buffered reports the records staged since the last flush.
func (w *Destination) Buffered() (rows, bytes int64) { return w.rows, w.bytes }

// Flush commits what was written with the position of the last record written.
func (w *Destination) Flush(ctx context.Context) error {
	if w.last == nil {
		return w.FlushAt(ctx, w.committed)
	}
	return w.FlushAt(ctx, w.last)
}

// FlushAt loads every staged table and commits pos with them in one transaction.
func (w *Destination) FlushAt(ctx context.Context, pos record.Position) error {
	if w.broken != nil {
		return w.broken
	}
	if pos == nil || (pos.Compare(w.committed) <= 0 && len(w.staged) == 0) {
		w.rows, w.bytes = 0, 0
		return nil
	}
	if err := w.flush(ctx, pos); err != nil {
		// The transaction is gone, and with it the statements the tables' columns
		// were planned after: this session cannot go on, a new one re-reads the target.
		w.broken = fmt.Errorf("an earlier flush failed, the destination must be opened again: %w", err)
		if rerr := w.conn.Rollback(context.WithoutCancel(ctx)); rerr != nil {
			w.log.Debug("rollback after a failed flush", "err", rerr)
		}
		return err
	}
	for _, t := range w.staged {
		t.reset()
		t.ddl = nil
	}
	w.staged = w.staged[:0]
	w.rows, w.bytes = 0, 0
	w.committed = pos
	return nil
}

func (w *Destination) flush(ctx context.Context, pos record.Position) error {
	t0 := time.Now()
	if err := w.applyDDL(ctx); err != nil {
		return err
	}
	if err := w.conn.Begin(ctx); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// The offsets row is locked first and must hold what this session last saw:
	// another process committing to the same connector is found here, before it
	// could mix its rows with ours.
	var held string
	found, err := w.conn.QueryRow(ctx, "SELECT position FROM "+w.offsets+" WHERE connector = $1"+w.d.ForUpdate(), []any{w.name}, &held)
	if err != nil {
		return fmt.Errorf("lock the offsets row: %w", err)
	}
	if want := w.committed.String(); found != (w.committed != nil) || held != want {
		return fmt.Errorf("%s holds position %q for connector %s, not %q as this process committed: another process is loading the same connector into this target; "+
			"give each connector its own target schema, or its own name", w.offsets, held, w.name, want)
	}
	for _, t := range w.staged {
		if err := w.load(ctx, t); err != nil {
			return fmt.Errorf("load %s.%s: %w", t.target.Schema, t.target.Table, err)
		}
	}
	if _, err := w.conn.Exec(ctx, "INSERT INTO "+w.offsets+" (connector, position, committed_at) VALUES ($1, $2, $3) "+
		"ON CONFLICT (connector) DO UPDATE SET position = excluded.position, committed_at = excluded.committed_at",
		w.name, pos.String(), time.Now().UTC()); err != nil {
		return fmt.Errorf("update the offsets row: %w", err)
	}
	if err := w.conn.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	w.log.Debug("flushed", "position", pos.String(), "rows", w.rows, "tables", len(w.staged), "took", time.Since(t0))
	return nil
}

// applyDDL creates and alters the staged tables before the flush's transaction, each
// statement committing on its own: DuckDB cannot always commit a transaction that
// altered a table twice (an added BOOLEAN column with a default, then another column,
// fail at COMMIT), nor one that changes rows of a table it altered that way. A crash
// between the statements and the flush leaves columns that no row uses yet; the next
// session reads them back and does not add them again.
func (w *Destination) applyDDL(ctx context.Context) error {
	for _, t := range w.staged {
		for len(t.ddl) > 0 {
			if _, err := w.conn.Exec(ctx, t.ddl[0]); err != nil {
				return fmt.Errorf("%s: %w", t.ddl[0], err)
			}
			t.ddl = t.ddl[1:]
		}
	}
	return nil
}

// Close releases the session without flushing.
func (w *Destination) Close(ctx context.Context) error {
	return w.conn.Close(ctx)
}

// bind returns the binding of a source schema: the table it lands in, read from the
// target (or planned) the first time, and altered when the schema brings changes.
func (w *Destination) bind(ctx context.Context, s *record.Schema) (*binding, error) {
	if b, ok := w.bound[s]; ok {
		return b, nil
	}
	tgt := w.layout.For(s.Namespace, s.Table)
	t, ok := w.tables[tgt]
	if !ok {
		t = &table{target: tgt, source: s.QualifiedName()}
		cols, err := w.conn.Columns(ctx, tgt.Schema, tgt.Table)
		if err != nil {
			return nil, fmt.Errorf("read the columns of %s.%s: %w", tgt.Schema, tgt.Table, err)
		}
		t.cols = cols
		if cols == nil {
			ddl, err := CreateTable(w.d, tgt, s)
			if err != nil {
				return nil, err
			}
			t.ddl = append(t.ddl, ddl)
			t.cols = []Column{} // planned below, as the statement creates them
			for _, c := range s.Columns {
				typ, _ := w.d.ColumnType(c.Type)
				t.cols = append(t.cols, Column{Name: c.Name, Type: typ, Logical: c.Type, Key: c.Key && tgt.Mode == Merge})
			}
			for _, m := range metaColumns(tgt.Mode, tgt.SoftDelete) {
				typ, _ := w.d.ColumnType(m.Type)
				if m.Name == ColPos {
					typ = w.d.PositionType()
				}
				t.cols = append(t.cols, Column{Name: m.Name, Type: typ, Logical: m.Type})
			}
		}
		w.tables[tgt] = t
	} else if t.source != s.QualifiedName() {
		return nil, connector.Permanent(fmt.Errorf("source tables %s and %s would both load into %s.%s: make the table pattern tell them apart (table: \"{namespace}_{table}\")",
			t.source, s.QualifiedName(), tgt.Schema, tgt.Table))
	}
	before := len(t.cols)
	stmts, err := alter(w.d, tgt, s, &t.cols)
	if err != nil {
		return nil, err
	}
	if len(stmts) > 0 {
		for _, q := range stmts {
			w.log.Info("target table follows its source", "table", tgt.Schema+"."+tgt.Table, "statement", q)
		}
		t.ddl = append(t.ddl, stmts...)
		w.stage(t)
	}
	if len(t.cols) > before {
		// Rows staged before the new columns get no value for them (the target keeps
		// its own, or NULL for a new row).
		for _, r := range t.rows {
			r.vals = append(r.vals, make([]record.Value, len(t.cols)-before)...)
			if r.keep != nil || t.target.Mode == Merge {
				r.keep = append(keepOf(r, before), trues(len(t.cols)-before)...)
			}
		}
		t.keep = t.keep || (t.target.Mode == Merge && len(t.rows) > 0)
	}
	if len(t.ddl) > 0 {
		w.stage(t)
	}
	b := &binding{t: t, idx: make([]int, len(s.Columns)), unchanged: map[string]int{}}
	pos := map[string]int{}
	for i, c := range t.cols {
		pos[c.Name] = i
		if isMeta(c.Name) || c.Logical.Kind == record.KindInvalid {
			b.fixed = append(b.fixed, i)
		}
	}
	for i, c := range s.Columns {
		b.idx[i] = pos[c.Name]
		b.unchanged[c.Name] = pos[c.Name]
		if c.Key {
			b.key = append(b.key, pos[c.Name])
		}
	}
	w.bound[s] = b
	return b, nil
}

func keepOf(r *row, n int) []bool {
	if r.keep != nil {
		return r.keep
	}
	return make([]bool, n)
}

func trues(n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = true
	}
	return out
}

// Reload refuses a new snapshot into tables that may keep rows by key: it would leave
// there the rows the source deleted since the earlier load. Append tables keep every
// change and take a new epoch as more changes.
func (w *Destination) Reload(ctx context.Context) error {
	merges := w.layout.Mode == Merge
	for _, r := range w.layout.Rules {
		merges = merges || Mode(r.Mode) == Merge
	}
	if !merges {
		return nil
	}
	return connector.Permanent(fmt.Errorf("connector %s starts again from a new snapshot (connectd offsets reset), but its merge tables in schema %s (named %s) still hold the rows of the earlier load, "+
		"and the snapshot would leave there the rows deleted on the source since. Drop or truncate those tables, then forget the earlier load: "+
		"DELETE FROM %s WHERE connector = '%s'; and start again (docs/design.md, \"Targets that keep their position\")",
		w.name, w.layout.Schema, w.layout.Table, w.offsets, strings.ReplaceAll(w.name, "'", "''")))
}
