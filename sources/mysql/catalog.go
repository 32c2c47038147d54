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
//
// Only the selected tables must be followed exactly. The others of the tracked
// databases are followed where the parser can (so that a table renamed into a
// selected name, as online schema-change tools do, arrives with its definition);
// a statement on them the parser cannot follow makes the catalog forget them
// instead of stopping the connector.
type catalog struct {
	tables    map[tableName]*tableDef
	sequences map[tableName]bool // MariaDB sequences: their rows events hold the sequence's state, not data
	dbCharset map[string]string  // default character set of each database, for tables created without one
	server    string             // the server's default character set, for databases created without one
	// provisional holds the tables whose definition was taken from SHOW CREATE TABLE
	// (a DDL the parser could not follow), with the binlog end at that moment: the
	// definition is only right if the table does not change again before it.
	provisional map[tableName]coords
	scope       scope
}

// scope says which databases are tracked and which tables selected.
type scope interface {
	tracked(db string) bool
	selected(t tableName) bool
}

func newCatalog(sc scope) *catalog {
	return &catalog{tables: map[tableName]*tableDef{}, sequences: map[tableName]bool{}, dbCharset: map[string]string{},
		provisional: map[tableName]coords{}, scope: sc}
}

// change is what a DDL did to the tracked tables.
type change struct {
	touched   []tableName // tables whose definition changed, appeared or went
	truncated *tableName
	forgotten []tableName // unselected tables whose DDL the parser could not follow
	keep      bool        // the statement changed the catalog without touching a table (sequences, charsets)
}

// ddlError is a DDL the parser cannot follow on a selected table: the connector
// either takes the table's definition from the server or stops.
type ddlError struct {
	table tableName // the selected table, when the statement names one
	err   error
}

func (e *ddlError) Error() string { return e.err.Error() }
func (e *ddlError) Unwrap() error { return e.err }

// apply runs one DDL statement (that ran with db as its default database) against
// the catalog. A statement that touches a selected table in a way the parser cannot
// follow is a *ddlError.
func (c *catalog) apply(sql, db string) (change, error) {
	d, err := parseDDL(sql, db)
	if err != nil {
		if d != nil && d.table.name != "" {
			return c.unfollowed(d.table, err)
		}
		return change{}, &ddlError{err: err}
	}
	var ch change
	switch d.kind {
	case stmtCreate:
		if !c.scope.tracked(d.table.db) {
			return ch, nil
		}
		if c.exists(d.table) && d.ifNot && !d.replace {
			return ch, nil
		}
		if d.def.Charset == "" {
			// CREATE TABLE without a character set takes its database's default.
			d.def.Charset = c.charsetOf(d.table.db)
		}
		delete(c.sequences, d.table)
		c.tables[d.table] = d.def
		ch.touched = append(ch.touched, d.table)
	case stmtSequence:
		if !c.scope.tracked(d.table.db) || c.exists(d.table) && d.ifNot && !d.replace {
			return ch, nil
		}
		if _, ok := c.tables[d.table]; ok {
			delete(c.tables, d.table)
			ch.touched = append(ch.touched, d.table)
		}
		c.sequences[d.table] = true
		ch.keep = true
	case stmtDropSeq:
		for _, t := range d.tables {
			delete(c.sequences, t)
		}
		ch.keep = true
	case stmtDBCharset:
		ch.keep = true
		if _, known := c.dbCharset[d.db]; known && d.ifNot {
			return ch, nil
		}
		if d.charset != "" {
			c.dbCharset[d.db] = d.charset
		} else if _, ok := c.dbCharset[d.db]; !ok && c.server != "" {
			c.dbCharset[d.db] = c.server
		}
	case stmtServerCharset:
		c.server = d.charset
		ch.keep = true
	case stmtLike:
		if !c.scope.tracked(d.table.db) {
			return ch, nil
		}
		if c.exists(d.table) && d.ifNot && !d.replace {
			return ch, nil
		}
		src, ok := c.tables[d.like]
		if !ok {
			return c.unfollowed(d.table, fmt.Errorf("%w: CREATE TABLE %s LIKE %s: the definition of %s is not tracked", errUnsupported, d.table, d.like, d.like))
		}
		c.tables[d.table] = src.clone()
		ch.touched = append(ch.touched, d.table)
	case stmtAlter:
		return c.alter(d)
	case stmtDrop:
		for _, t := range d.tables {
			if _, ok := c.tables[t]; ok {
				delete(c.tables, t)
				ch.touched = append(ch.touched, t)
			}
			delete(c.sequences, t)
		}
	case stmtDropDB:
		for t := range c.tables {
			if t.db == d.db {
				delete(c.tables, t)
				ch.touched = append(ch.touched, t)
			}
		}
		for t := range c.sequences {
			if t.db == d.db {
				delete(c.sequences, t)
			}
		}
		delete(c.dbCharset, d.db)
	case stmtRename:
		return c.rename(d)
	case stmtTruncate:
		if _, ok := c.tables[d.table]; ok {
			t := d.table
			ch.truncated = &t
		}
	}
	return ch, nil
}

func (c *catalog) exists(t tableName) bool {
	_, ok := c.tables[t]
	return ok || c.sequences[t]
}

// charsetOf is the default character set of a database ("" when unknown: UTF-8).
func (c *catalog) charsetOf(db string) string {
	if cs, ok := c.dbCharset[db]; ok {
		return cs
	}
	return c.server
}

// unfollowed handles a statement about table t the parser cannot follow: an error
// for a selected table, and for any other the catalog forgets t.
func (c *catalog) unfollowed(t tableName, err error) (change, error) {
	if !c.scope.tracked(t.db) {
		return change{}, nil
	}
	if c.scope.selected(t) {
		return change{}, &ddlError{table: t, err: err}
	}
	ch := change{forgotten: []tableName{t}}
	if _, ok := c.tables[t]; ok {
		delete(c.tables, t)
		ch.touched = append(ch.touched, t)
	}
	return ch, nil
}

func (c *catalog) alter(d *ddl) (change, error) {
	var ch change
	if !c.scope.tracked(d.table.db) || c.sequences[d.table] {
		return ch, nil
	}
	def, ok := c.tables[d.table]
	if !ok {
		return c.unfollowed(d.table, fmt.Errorf("%w: ALTER TABLE %s: the table's definition is not tracked", errUnsupported, d.table))
	}
	nd, err := applyAlter(def, d.ops)
	if err != nil {
		return c.unfollowed(d.table, fmt.Errorf("%w: ALTER TABLE %s: %v", errUnsupported, d.table, err))
	}
	target := d.table
	for _, op := range d.ops {
		if op.op == "rename_table" {
			target = op.to
		}
	}
	delete(c.tables, d.table)
	ch.touched = append(ch.touched, d.table)
	if c.scope.tracked(target.db) {
		c.tables[target] = nd
		if target != d.table {
			ch.touched = append(ch.touched, target)
		}
	}
	return ch, nil
}

func (c *catalog) rename(d *ddl) (change, error) {
	var ch change
	for _, r := range d.renames {
		from, to := r[0], r[1]
		if c.sequences[from] {
			delete(c.sequences, from)
			if c.scope.tracked(to.db) {
				c.sequences[to] = true
			}
			continue
		}
		def, ok := c.tables[from]
		if !ok {
			if c.scope.tracked(to.db) {
				sub, err := c.unfollowed(to, fmt.Errorf("%w: RENAME TABLE %s TO %s: the definition of %s is not tracked", errUnsupported, from, to, from))
				if err != nil {
					return ch, err
				}
				ch.touched = append(ch.touched, sub.touched...)
				ch.forgotten = append(ch.forgotten, sub.forgotten...)
			}
			continue
		}
		delete(c.tables, from)
		ch.touched = append(ch.touched, from)
		if c.scope.tracked(to.db) {
			c.tables[to] = def
			ch.touched = append(ch.touched, to)
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
	// UntilFile and UntilOffset mark a definition taken from SHOW CREATE TABLE in
	// place of a DDL the parser could not follow: the binlog end when it was taken.
	UntilFile   string `json:"until_file,omitempty"`
	UntilOffset uint64 `json:"until_offset,omitempty"`
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
	return h.addEntry(ctx, pos, histEntry{DB: db, SQL: sql})
}

// addEntry appends e at pos and saves the history.
func (h *history) addEntry(ctx context.Context, pos []byte, e histEntry) error {
	e.Pos = hex.EncodeToString(pos)
	h.entries = append(h.entries, e)
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
func (h *history) replay(sc scope) (*catalog, error) {
	c := newCatalog(sc)
	for _, e := range h.entries {
		ch, err := c.apply(e.SQL, e.DB)
		if err != nil {
			var de *ddlError
			if errors.As(err, &de) && de.table.name != "" {
				return nil, connector.Permanent(fmt.Errorf("mysql: table %s is selected, but its definition cannot be followed (%v); statement: %s; if the table need not be captured, leave it out of tables", de.table, err, e.SQL))
			}
			return nil, connector.Permanent(fmt.Errorf("mysql: schema history: replay %q: %w", e.SQL, err))
		}
		if e.UntilFile != "" {
			for _, t := range ch.touched {
				c.provisional[t] = coords{file: e.UntilFile, offset: e.UntilOffset}
			}
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
