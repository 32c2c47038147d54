package warehouse

import (
	"context"
	"fmt"
	"strings"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// stagingTable is the name of the staging table of a merge, one at a time.
const stagingTable = "_connectd_stage"

// The staging table's own columns besides the target's.
const (
	colKeep    = "_keep"    // per data column: the target keeps its value
	colPartial = "_partial" // the row lacks values the source did not send
	colMoved   = "_moved"   // the row is a key change's new row (row.from)
	fromPrefix = "_from_"   // + a key column: the old key of a moved row
)

// load applies one table's staged rows inside the flush's transaction.
func (w *Destination) load(ctx context.Context, t *table) error {
	if len(t.rows) == 0 && t.truncAt == nil {
		return nil
	}
	data := t.dataColumns()
	if t.target.Mode == Append {
		return w.append(ctx, t, data)
	}
	return w.merge(ctx, t, data)
}

// dataColumns are the indexes in t.cols of the columns loaded from records: not the
// metadata, not the target's own columns of types connectd does not map.
func (t *table) dataColumns() []int {
	var out []int
	for i, c := range t.cols {
		if !isMeta(c.Name) && c.Logical.Kind != record.KindInvalid {
			out = append(out, i)
		}
	}
	return out
}

func (w *Destination) append(ctx context.Context, t *table, data []int) error {
	cols := make([]LoadColumn, 0, len(data)+5)
	for _, i := range data {
		cols = append(cols, LoadColumn{Name: t.cols[i].Name, Type: t.cols[i].Logical})
	}
	cols = append(cols, metaColumns(Append, false)...)
	rows := make([][]record.Value, len(t.rows))
	for n, r := range t.rows {
		v := make([]record.Value, 0, len(cols))
		for _, i := range data {
			v = append(v, r.vals[i])
		}
		var unchanged record.Value
		if len(r.unchanged) > 0 {
			l := make([]record.Value, len(r.unchanged))
			for i, s := range r.unchanged {
				l[i] = s
			}
			unchanged = l
		}
		var txid record.Value
		if r.txid != "" {
			txid = r.txid
		}
		rows[n] = append(v, r.op.String(), r.pos.String(), record.TimestampOf(r.ts), txid, unchanged)
	}
	return w.conn.Load(ctx, t.target.Schema, t.target.Table, cols, rows)
}

// merge applies a table's staged truncate and rows to its target.
func (w *Destination) merge(ctx context.Context, t *table, data []int) error {
	// A hard truncate deletes before the rows staged after it are applied; a soft one
	// marks what is left unmarked after the staged rows (stage.go says why).
	if t.truncAt != nil && !t.target.SoftDelete {
		if err := w.truncate(ctx, t); err != nil {
			return err
		}
	}
	if len(t.rows) > 0 {
		if err := w.mergeRows(ctx, t, data); err != nil {
			return err
		}
	}
	if t.truncAt != nil && t.target.SoftDelete {
		return w.truncate(ctx, t)
	}
	return nil
}

// truncate removes, or marks deleted, the target's rows older than the truncate.
func (w *Destination) truncate(ctx context.Context, t *table) error {
	d, tr := w.d, t.truncAt
	tgt := qualified(d, t.target.Schema, t.target.Table)
	q := "DELETE FROM " + tgt + " WHERE " + d.Ident(ColPos) + " < $1"
	args := []any{tr.pos.String()}
	if t.target.SoftDelete {
		q = fmt.Sprintf("UPDATE %s SET %s = true, %s = $2, %s = $1, %s = $2 WHERE %s < $1 AND NOT %s",
			tgt, d.Ident(ColDeleted), d.Ident(ColDeletedAt), d.Ident(ColPos), d.Ident(ColCommitTS), d.Ident(ColPos), d.Ident(ColDeleted))
		args = append(args, record.TimestampOf(tr.ts).Time())
	}
	if _, err := w.conn.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	return nil
}

// mergeRows loads the rows into a staging table, then applies them to the target by
// key in a few set statements: deletes, updates of the rows the target has (only
// where its row is older: _pos), inserts of the others.
func (w *Destination) mergeRows(ctx context.Context, t *table, data []int) error {
	d := w.d
	tgt := qualified(d, t.target.Schema, t.target.Table)
	soft := t.target.SoftDelete
	rows := t.rows
	if !t.deletes && !t.updates && !t.keep && t.truncAt == nil {
		// Only inserts (a snapshot, mostly): the rows whose key the target lacks, which
		// are usually all of them, are copied straight in; only the others are merged.
		old, err := w.insertNew(ctx, t, data)
		if err != nil {
			return err
		}
		if rows = old; len(rows) == 0 {
			return nil
		}
	}

	cols := make([]LoadColumn, 0, len(data)+5)
	defs := make([]string, 0, len(data)+5)
	for _, i := range data {
		c := t.cols[i]
		cols = append(cols, LoadColumn{Name: c.Name, Type: c.Logical})
		defs = append(defs, d.Ident(c.Name)+" "+c.Type)
	}
	text := record.Type{Kind: record.KindString}
	boolean := record.Type{Kind: record.KindBool}
	meta := []LoadColumn{{ColOp, text}, {ColPos, text}, {ColCommitTS, record.Type{Kind: record.KindTimestampTZ}}}
	if t.keep {
		meta = append(meta, LoadColumn{colKeep, record.Type{Kind: record.KindList, Elem: &boolean}}, LoadColumn{colPartial, boolean})
	}
	if t.moved {
		meta = append(meta, LoadColumn{colMoved, boolean})
	}
	for _, m := range meta {
		typ := d.PositionType()
		if m.Name != ColPos {
			var err error
			if typ, err = d.ColumnType(m.Type); err != nil {
				return err
			}
		}
		defs = append(defs, d.Ident(m.Name)+" "+typ)
	}
	cols = append(cols, meta...)
	if t.moved {
		for _, i := range data {
			if c := t.cols[i]; c.Key {
				cols = append(cols, LoadColumn{fromPrefix + c.Name, c.Logical})
				defs = append(defs, d.Ident(fromPrefix+c.Name)+" "+c.Type)
			}
		}
	}

	staged := make([][]record.Value, len(rows))
	for n, r := range rows {
		v := make([]record.Value, 0, len(cols))
		for _, i := range data {
			v = append(v, r.vals[i])
		}
		v = append(v, r.op.String(), r.pos.String(), record.TimestampOf(r.ts))
		if t.keep {
			keep := make([]record.Value, len(data))
			for k, i := range data {
				keep[k] = r.keep != nil && r.keep[i]
			}
			v = append(v, keep, r.partial)
		}
		if t.moved {
			v = append(v, r.from != nil)
			for _, i := range data {
				if t.cols[i].Key {
					if r.from != nil {
						v = append(v, r.from.vals[i])
					} else {
						v = append(v, nil)
					}
				}
			}
		}
		staged[n] = v
	}

	stage := d.Ident(stagingTable)
	if _, err := w.conn.Exec(ctx, d.CreateStaging(stagingTable, strings.Join(defs, ", "))); err != nil {
		return fmt.Errorf("create the staging table: %w", err)
	}
	if err := w.conn.Load(ctx, "", stagingTable, cols, staged); err != nil {
		return fmt.Errorf("load the staging table: %w", err)
	}

	var keys []string
	for _, i := range data {
		if c := t.cols[i]; c.Key {
			keys = append(keys, "t."+d.Ident(c.Name)+" = s."+d.Ident(c.Name))
		}
	}
	match := strings.Join(keys, " AND ")
	op, pos := "s."+d.Ident(ColOp), d.Ident(ColPos)
	notDelete := ""
	if !soft {
		notDelete = op + " <> 'd' AND "
	}
	var set, names, values []string
	for k, i := range data {
		c := d.Ident(t.cols[i].Name)
		names, values = append(names, c), append(values, "s."+c)
		if t.cols[i].Key {
			continue
		}
		if t.keep {
			// A moved row took its kept values from the old key's row (fillMoved).
			notMoved := ""
			if t.moved {
				notMoved = " AND NOT s." + d.Ident(colMoved)
			}
			set = append(set, fmt.Sprintf("%s = CASE WHEN s.%s[%d]%s THEN t.%s ELSE s.%s END", c, d.Ident(colKeep), k+1, notMoved, c, c))
		} else {
			set = append(set, c+" = s."+c)
		}
	}
	set = append(set, pos+" = s."+pos, d.Ident(ColCommitTS)+" = s."+d.Ident(ColCommitTS))
	names = append(names, pos, d.Ident(ColCommitTS))
	values = append(values, "s."+pos, "s."+d.Ident(ColCommitTS))
	if soft {
		del := fmt.Sprintf("%s = 'd'", op)
		delAt := fmt.Sprintf("CASE WHEN %s = 'd' THEN s.%s END", op, d.Ident(ColCommitTS))
		set = append(set, d.Ident(ColDeleted)+" = "+del, d.Ident(ColDeletedAt)+" = "+delAt)
		names = append(names, d.Ident(ColDeleted), d.Ident(ColDeletedAt))
		values = append(values, del, delAt)
	}
	missing := fmt.Sprintf("NOT EXISTS (SELECT 1 FROM %s AS t WHERE %s)", tgt, match)
	if t.moved {
		if err := w.fillMoved(ctx, t, data, tgt); err != nil {
			return err
		}
	}
	if t.partial {
		lacking := missing
		if t.moved {
			lacking = "(s." + d.Ident(colMoved) + " OR " + missing + ")"
		}
		if err := w.checkPartial(ctx, t, tgt, lacking); err != nil {
			return err
		}
	}
	if m, ok := d.(Merger); ok && m.Merge() {
		// One statement, one join of the staged rows with the target, where the
		// statements below join twice (update, then insert where missing).
		var q strings.Builder
		fmt.Fprintf(&q, "MERGE INTO %s AS t USING %s AS s ON %s", tgt, stage, match)
		if !soft {
			fmt.Fprintf(&q, " WHEN MATCHED AND %s = 'd' AND t.%s < s.%s THEN DELETE", op, pos, pos)
		}
		fmt.Fprintf(&q, " WHEN MATCHED AND %st.%s < s.%s THEN UPDATE SET %s", notDelete, pos, pos, strings.Join(set, ", "))
		insertIf := ""
		if !soft {
			insertIf = " AND " + op + " <> 'd'"
		}
		fmt.Fprintf(&q, " WHEN NOT MATCHED%s THEN INSERT (%s) VALUES (%s)", insertIf, strings.Join(names, ", "), strings.Join(values, ", "))
		if _, err := w.conn.Exec(ctx, q.String()); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
	} else {
		if t.deletes && !soft {
			q := fmt.Sprintf("DELETE FROM %s AS t WHERE EXISTS (SELECT 1 FROM %s AS s WHERE %s = 'd' AND %s AND t.%s < s.%s)", tgt, stage, op, match, pos, pos)
			if _, err := w.conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("delete: %w", err)
			}
		}
		q := fmt.Sprintf("UPDATE %s AS t SET %s FROM %s AS s WHERE %s%s AND t.%s < s.%s", tgt, strings.Join(set, ", "), stage, notDelete, match, pos, pos)
		if _, err := w.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		q = fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s AS s WHERE %s%s", tgt, strings.Join(names, ", "), strings.Join(values, ", "), stage, notDelete, missing)
		if _, err := w.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
	}
	if q := d.DropStaging(stagingTable); q != "" {
		if _, err := w.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("drop the staging table: %w", err)
		}
	}
	return nil
}

// fillMoved gives the new rows of key changes the values the source did not send from
// the target's row of the old key, before the flush deletes it; the ones whose old row
// the target lacks stay partial.
func (w *Destination) fillMoved(ctx context.Context, t *table, data []int, tgt string) error {
	d := w.d
	var set, match []string
	for k, i := range data {
		c := d.Ident(t.cols[i].Name)
		if t.cols[i].Key {
			match = append(match, "o."+c+" = s."+d.Ident(fromPrefix+t.cols[i].Name))
			continue
		}
		set = append(set, fmt.Sprintf("%s = CASE WHEN s.%s[%d] THEN o.%s ELSE s.%s END", c, d.Ident(colKeep), k+1, c, c))
	}
	set = append(set, d.Ident(colPartial)+" = false")
	q := fmt.Sprintf("UPDATE %s AS s SET %s FROM %s AS o WHERE s.%s AND %s", d.Ident(stagingTable), strings.Join(set, ", "), tgt, d.Ident(colMoved), strings.Join(match, " AND "))
	if _, err := w.conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("take the unsent values of key changes from the old keys' rows: %w", err)
	}
	return nil
}

// checkPartial stops the load when staged updates lack values the source did not
// send (unchanged TOAST columns) for rows the target does not have: there is nothing
// to keep them from, and writing NULL would lose them silently.
func (w *Destination) checkPartial(ctx context.Context, t *table, tgt, lacking string) error {
	d := w.d
	var n int64
	q := fmt.Sprintf("SELECT count(*) FROM %s AS s WHERE s.%s <> 'd' AND s.%s AND %s", d.Ident(stagingTable), d.Ident(ColOp), d.Ident(colPartial), lacking)
	if _, err := w.conn.QueryRow(ctx, q, nil, &n); err != nil {
		return fmt.Errorf("look for updates of missing rows: %w", err)
	}
	if n > 0 {
		return connector.Permanent(fmt.Errorf("%d updates of source table %s leave values unsent (unchanged TOAST columns) for rows that target table %s does not have: the target has lost rows the source still has. "+
			"Reload it with `connectd offsets reset` (a new snapshot; docs/design.md, \"Targets that keep their position\")", n, t.source, tgt))
	}
	return nil
}

// keysTable is the staging table of insertNew: the staged rows' keys and numbers.
const keysTable = "_connectd_keys"

// insertNew copies the staged rows whose key the target does not have straight into
// it, and returns the others. It stages only the keys (and each row's number) to ask
// the target which exist: far cheaper than staging whole rows and inserting them with
// INSERT ... SELECT, which also writes each row twice.
func (w *Destination) insertNew(ctx context.Context, t *table, data []int) ([]*row, error) {
	d := w.d
	tgt := qualified(d, t.target.Schema, t.target.Table)
	var nonEmpty bool
	if _, err := w.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+tgt+")", nil, &nonEmpty); err != nil {
		return nil, fmt.Errorf("look for rows in %s: %w", tgt, err)
	}
	isOld := make([]bool, len(t.rows))
	if !nonEmpty {
		// An empty target (the first load of a snapshot) has none of the keys: no
		// need to ask. Nobody else writes it while the flush holds the offsets row.
		return nil, w.copyNew(ctx, t, data, isOld)
	}
	bigint := record.Type{Kind: record.KindInt64}
	bigintType, err := d.ColumnType(bigint)
	if err != nil {
		return nil, err
	}
	cols := []LoadColumn{{"_n", bigint}}
	defs := []string{"_n " + bigintType}
	var key []int
	var match []string
	for _, i := range data {
		if c := t.cols[i]; c.Key {
			key = append(key, i)
			cols = append(cols, LoadColumn{c.Name, c.Logical})
			defs = append(defs, d.Ident(c.Name)+" "+c.Type)
			match = append(match, "t."+d.Ident(c.Name)+" = s."+d.Ident(c.Name))
		}
	}
	keys := make([][]record.Value, len(t.rows))
	for n, r := range t.rows {
		k := make([]record.Value, 1, 1+len(key))
		k[0] = int64(n)
		for _, i := range key {
			k = append(k, r.vals[i])
		}
		keys[n] = k
	}
	if _, err := w.conn.Exec(ctx, d.CreateStaging(keysTable, strings.Join(defs, ", "))); err != nil {
		return nil, fmt.Errorf("create the keys' staging table: %w", err)
	}
	if err := w.conn.Load(ctx, "", keysTable, cols, keys); err != nil {
		return nil, fmt.Errorf("load the keys' staging table: %w", err)
	}
	var old []*row
	q := fmt.Sprintf("SELECT s._n FROM %s AS s WHERE EXISTS (SELECT 1 FROM %s AS t WHERE %s)",
		d.Ident(keysTable), tgt, strings.Join(match, " AND "))
	err = w.conn.Query(ctx, q, func(n int64) error {
		if n < 0 || n >= int64(len(t.rows)) {
			return fmt.Errorf("the keys' staging table returned row %d of %d", n, len(t.rows))
		}
		isOld[n] = true
		old = append(old, t.rows[n])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find the keys the target has: %w", err)
	}
	if q := d.DropStaging(keysTable); q != "" {
		if _, err := w.conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("drop the keys' staging table: %w", err)
		}
	}
	return old, w.copyNew(ctx, t, data, isOld)
}

// copyNew copies the staged rows not marked in isOld straight into the target.
func (w *Destination) copyNew(ctx context.Context, t *table, data []int, isOld []bool) error {
	load := make([]LoadColumn, 0, len(data)+4)
	for _, i := range data {
		load = append(load, LoadColumn{t.cols[i].Name, t.cols[i].Logical})
	}
	load = append(load, metaColumns(Merge, t.target.SoftDelete)...)
	rows := make([][]record.Value, 0, len(t.rows))
	for n, r := range t.rows {
		if isOld[n] {
			continue
		}
		v := make([]record.Value, 0, len(load))
		for _, i := range data {
			v = append(v, r.vals[i])
		}
		v = append(v, r.pos.String(), record.TimestampOf(r.ts))
		if t.target.SoftDelete {
			v = append(v, false, nil)
		}
		rows = append(rows, v)
	}
	if len(rows) == 0 {
		return nil
	}
	if err := w.conn.Load(ctx, t.target.Schema, t.target.Table, load, rows); err != nil {
		return fmt.Errorf("copy new rows: %w", err)
	}
	return nil
}
