package mysql

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// catalog is the definition of every table of the tracked databases as of one
// binlog position. It changes only through DDL statements, so replaying the same
// statements from the same start always gives the same definitions.
type catalog struct {
	tables  map[tableName]*tableDef
	tracked func(db string) bool
}

func newCatalog(tracked func(db string) bool) *catalog {
	return &catalog{tables: map[tableName]*tableDef{}, tracked: tracked}
}

// change is what a DDL did to the tracked tables.
type change struct {
	touched   []tableName // tables whose definition changed, appeared or went
	truncated *tableName
}

// apply runs one DDL statement (that ran with db as its default database) against
// the catalog. A statement that touches a tracked table in a way the parser cannot
// follow is an error naming the statement.
func (c *catalog) apply(sql, db string) (change, error) {
	d, err := parseDDL(sql, db)
	if err != nil {
		if d != nil && d.table.name != "" && !c.tracked(d.table.db) {
			return change{}, nil
		}
		return change{}, fmt.Errorf("%w", err)
	}
	var ch change
	switch d.kind {
	case stmtCreate:
		if !c.tracked(d.table.db) {
			return ch, nil
		}
		if _, ok := c.tables[d.table]; ok && d.ifNot && !d.replace {
			return ch, nil
		}
		c.tables[d.table] = d.def
		ch.touched = append(ch.touched, d.table)
	case stmtLike:
		if !c.tracked(d.table.db) {
			return ch, nil
		}
		if _, ok := c.tables[d.table]; ok && d.ifNot && !d.replace {
			return ch, nil
		}
		src, ok := c.tables[d.like]
		if !ok {
			return ch, fmt.Errorf("%w: CREATE TABLE %s LIKE %s: the definition of %s is not tracked", errUnsupported, d.table, d.like, d.like)
		}
		c.tables[d.table] = src.clone()
		ch.touched = append(ch.touched, d.table)
	case stmtAlter:
		if !c.tracked(d.table.db) {
			return ch, nil
		}
		def, ok := c.tables[d.table]
		if !ok {
			return ch, fmt.Errorf("%w: ALTER TABLE %s: the table's definition is not tracked", errUnsupported, d.table)
		}
		nd, err := applyAlter(def, d.ops)
		if err != nil {
			return ch, fmt.Errorf("%w: ALTER TABLE %s: %v", errUnsupported, d.table, err)
		}
		target := d.table
		for _, op := range d.ops {
			if op.op == "rename_table" {
				target = op.to
			}
		}
		delete(c.tables, d.table)
		ch.touched = append(ch.touched, d.table)
		if c.tracked(target.db) {
			c.tables[target] = nd
			if target != d.table {
				ch.touched = append(ch.touched, target)
			}
		}
	case stmtDrop:
		for _, t := range d.tables {
			if _, ok := c.tables[t]; ok {
				delete(c.tables, t)
				ch.touched = append(ch.touched, t)
			}
		}
	case stmtDropDB:
		for t := range c.tables {
			if t.db == d.db {
				delete(c.tables, t)
				ch.touched = append(ch.touched, t)
			}
		}
	case stmtRename:
		for _, r := range d.renames {
			from, to := r[0], r[1]
			def, ok := c.tables[from]
			if !ok {
				if c.tracked(to.db) {
					return ch, fmt.Errorf("%w: RENAME TABLE %s TO %s: the definition of %s is not tracked", errUnsupported, from, to, from)
				}
				continue
			}
			delete(c.tables, from)
			ch.touched = append(ch.touched, from)
			if c.tracked(to.db) {
				c.tables[to] = def
				ch.touched = append(ch.touched, to)
			}
		}
	case stmtTruncate:
		if _, ok := c.tables[d.table]; ok {
			t := d.table
			ch.truncated = &t
		}
	}
	return ch, nil
}

// historyKey is the state-store key of the schema history.
const historyKey = "mysql-schema-history"

// histEntry is one statement of the schema history: the base definitions (SHOW
// CREATE TABLE, at position "") and every DDL applied since, at its position.
type histEntry struct {
	Pos string `json:"pos"` // hex of the ordering prefix; "" for the base definitions
	DB  string `json:"db"`
	SQL string `json:"sql"`
}

type historyFile struct {
	Version int         `json:"version"`
	Entries []histEntry `json:"entries"`
}

// history is the schema history of one connector, kept in the state store so that
// a restart at committed position P rebuilds the catalog as of P: from the entries
// at or before P. Entries past P (written before a crash) are dropped and written
// again when the stream replays their statements.
type history struct {
	store   connector.StateStore // nil: memory only
	entries []histEntry
}

// load reads the history and keeps the entries at or before committed (an ordering
// prefix). ok is false when there is no stored history.
func (h *history) load(ctx context.Context, committed []byte) (bool, error) {
	h.entries = nil
	if h.store == nil {
		return false, nil
	}
	data, err := h.store.Load(ctx, historyKey)
	if err != nil {
		return false, fmt.Errorf("mysql: load schema history: %w", err)
	}
	if data == nil {
		return false, nil
	}
	var f historyFile
	if err := json.Unmarshal(data, &f); err != nil {
		return false, connector.Permanent(fmt.Errorf("mysql: schema history is corrupt (%v); run `connectd offsets reset` to snapshot again", err))
	}
	for _, e := range f.Entries {
		p, err := hex.DecodeString(e.Pos)
		if err != nil {
			return false, connector.Permanent(fmt.Errorf("mysql: schema history entry at %q is corrupt; run `connectd offsets reset` to snapshot again", e.Pos))
		}
		if bytes.Compare(p, committed) <= 0 {
			h.entries = append(h.entries, e)
		}
	}
	return true, nil
}

// reset starts a new history from base definitions.
func (h *history) reset(ctx context.Context, base []histEntry) error {
	h.entries = append([]histEntry(nil), base...)
	return h.save(ctx)
}

// add appends a DDL applied at pos and saves the history.
func (h *history) add(ctx context.Context, pos []byte, db, sql string) error {
	h.entries = append(h.entries, histEntry{Pos: hex.EncodeToString(pos), DB: db, SQL: sql})
	return h.save(ctx)
}

func (h *history) save(ctx context.Context) error {
	if h.store == nil {
		return nil
	}
	data, err := json.Marshal(historyFile{Version: 1, Entries: h.entries})
	if err != nil {
		return fmt.Errorf("mysql: encode schema history: %w", err)
	}
	if err := h.store.Save(ctx, historyKey, data); err != nil {
		return fmt.Errorf("mysql: save schema history: %w", err)
	}
	return nil
}

// replay builds a catalog from the entries.
func (h *history) replay(tracked func(string) bool) (*catalog, error) {
	c := newCatalog(tracked)
	for _, e := range h.entries {
		if _, err := c.apply(e.SQL, e.DB); err != nil {
			return nil, connector.Permanent(fmt.Errorf("mysql: schema history: replay %q: %w", e.SQL, err))
		}
	}
	return c, nil
}

// tableSchema is a table's record schema and the decoders of its columns.
type tableSchema struct {
	schema *record.Schema
	cols   []colType
	key    []int
}

// buildSchema maps a definition to a record schema.
func buildSchema(t tableName, def *tableDef, opts typeOpts) (*tableSchema, error) {
	ts := &tableSchema{}
	cols := make([]record.Column, len(def.Columns))
	key := map[string]bool{}
	for _, k := range def.Key {
		key[strings.ToLower(k)] = true
	}
	for i, c := range def.Columns {
		ct := mapType(c, def.Charset, opts)
		ts.cols = append(ts.cols, ct)
		isKey := key[strings.ToLower(c.Name)]
		cols[i] = record.Column{Name: c.Name, SourceType: ct.source, Type: ct.typ, Nullable: !c.NotNull && !isKey, Key: isKey}
		if isKey {
			ts.key = append(ts.key, i)
		}
	}
	if len(ts.key) != len(def.Key) {
		return nil, errors.New("primary key names a column the table does not have")
	}
	ts.schema = record.NewSchema(t.db, t.name, cols)
	return ts, nil
}
