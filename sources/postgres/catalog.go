package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/connectd/connectd/record"
	"github.com/connectd/connectd/sources/postgres/pgvalue"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// table is one selected table as pg_catalog describes it.
type table struct {
	oid      uint32
	schema   string
	name     string
	identity byte // pg_class.relreplident: d default (primary key), i index, f full, n nothing
	estimate int64
}

func (t table) qualified() string { return t.schema + "." + t.name }

// ident is the quoted SQL name.
func (t table) ident() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// column is one column as pg_attribute describes it.
type column struct {
	name     string
	typOID   uint32
	typmod   int32
	dims     int
	notNull  bool
	typeName string // format_type(atttypid, atttypmod)
	pk       bool   // part of the primary key
	ri       bool   // part of the replica identity index
}

// catalog answers the questions the source asks pg_catalog on a normal connection.
type catalog struct {
	conn    *pgx.Conn
	version int // server_version_num
	types   map[uint32]*pgvalue.TypeInfo
}

func newCatalog(ctx context.Context, conn *pgx.Conn) (*catalog, error) {
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version_num").Scan(&v); err != nil {
		return nil, classify("read server_version_num", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("postgres: server_version_num %q: %w", v, err)
	}
	return &catalog{conn: conn, version: n, types: map[uint32]*pgvalue.TypeInfo{}}, nil
}

func (c *catalog) walLevel(ctx context.Context) (string, error) {
	var s string
	if err := c.conn.QueryRow(ctx, "SHOW wal_level").Scan(&s); err != nil {
		return "", classify("read wal_level", err)
	}
	return s, nil
}

// allTables lists the ordinary and partitioned tables outside the system schemas.
// Partitions are left out: a partitioned table is published through its root
// (publish_via_partition_root), so its partitions' rows come under the root's name.
func (c *catalog) allTables(ctx context.Context) ([]table, error) {
	partition := "AND NOT c.relispartition"
	if c.version < 100000 {
		partition = ""
	}
	rows, err := c.conn.Query(ctx, `
SELECT c.oid::int8, n.nspname, c.relname, c.relreplident::text, c.reltuples::float8
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') `+partition+`
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`)
	if err != nil {
		return nil, classify("list tables", err)
	}
	defer rows.Close()
	var out []table
	for rows.Next() {
		var t table
		var oid int64
		var ident string
		var est float64
		if err := rows.Scan(&oid, &t.schema, &t.name, &ident, &est); err != nil {
			return nil, classify("list tables", err)
		}
		t.oid = uint32(oid)
		if ident != "" {
			t.identity = ident[0]
		}
		if est > 0 {
			t.estimate = int64(est)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("list tables", err)
	}
	sortTables(out)
	return out, nil
}

// partitionRoot returns the schema.table of the top partitioned table that oid is
// a partition of (through any number of levels), or "" when it is no partition.
func (c *catalog) partitionRoot(ctx context.Context, oid uint32) (string, error) {
	if c.version < 100000 {
		return "", nil
	}
	var ns, name *string
	err := c.conn.QueryRow(ctx, `
WITH RECURSIVE up(relid, depth) AS (
  SELECT $1::oid, 0
  UNION ALL
  SELECT i.inhparent, up.depth + 1
  FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.relid
  JOIN pg_catalog.pg_class ch ON ch.oid = up.relid AND ch.relispartition
)
SELECT n.nspname::text, c.relname::text
FROM up JOIN pg_catalog.pg_class c ON c.oid = up.relid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE up.depth > 0
ORDER BY up.depth DESC LIMIT 1`, int64(oid)).Scan(&ns, &name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", classify(fmt.Sprintf("find the partitioned table of relation %d", oid), err)
	}
	return *ns + "." + *name, nil
}

func sortTables(ts []table) {
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].schema != ts[j].schema {
			return ts[i].schema < ts[j].schema
		}
		return ts[i].name < ts[j].name
	})
}

// matchTables resolves the patterns; each name without * or ? must match a table.
// The result is sorted by schema and name, without duplicates.
func matchTables(all []table, patterns []string) (matched []table, perPattern [][]table, err error) {
	seen := map[uint32]bool{}
	var empty []string
	for _, p := range patterns {
		var hits []table
		for _, t := range all {
			if globMatch(p, t.qualified()) {
				hits = append(hits, t)
				if !seen[t.oid] {
					seen[t.oid] = true
					matched = append(matched, t)
				}
			}
		}
		if len(hits) == 0 && !strings.ContainsAny(p, "*?") {
			// A glob may match nothing yet: tables created later are picked up.
			empty = append(empty, strconv.Quote(p))
		}
		perPattern = append(perPattern, hits)
	}
	sortTables(matched)
	if len(empty) > 0 {
		return matched, perPattern, permanentf("tables: %s matches no ordinary or partitioned table (names are schema.table, case-sensitive; * and ? are wildcards)", strings.Join(empty, ", "))
	}
	return matched, perPattern, nil
}

// globMatch matches name against pattern, where * is any run of characters and ? one
// character; everything else, dots included, matches itself.
func globMatch(pattern, name string) bool {
	p, n := []rune(pattern), []rune(name)
	pi, ni := 0, 0
	star, mark := -1, 0
	for ni < len(n) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == n[ni]):
			pi++
			ni++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ni
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// columns reads a table's published columns in attnum order. Generated columns are
// left out, as pgoutput leaves them out.
func (c *catalog) columns(ctx context.Context, t table) ([]column, error) {
	generated := ""
	if c.version >= 120000 {
		generated = "AND a.attgenerated = ''"
	}
	rows, err := c.conn.Query(ctx, `
SELECT a.attname, a.atttypid::int8, a.atttypmod, a.attndims, a.attnotnull,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY (i.indkey)),
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid AND i.indisreplident AND a.attnum = ANY (i.indkey))
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped `+generated+`
ORDER BY a.attnum`, int64(t.oid))
	if err != nil {
		return nil, classify("read columns of "+t.qualified(), err)
	}
	defer rows.Close()
	var out []column
	for rows.Next() {
		var col column
		var oid int64
		var dims int32
		if err := rows.Scan(&col.name, &oid, &col.typmod, &dims, &col.notNull, &col.typeName, &col.pk, &col.ri); err != nil {
			return nil, classify("read columns of "+t.qualified(), err)
		}
		col.typOID, col.dims = uint32(oid), int(dims)
		out = append(out, col)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("read columns of "+t.qualified(), err)
	}
	return out, nil
}

// keyColumns marks the key (docs/design.md, "Envelope"): the primary key, or the
// replica identity. With REPLICA IDENTITY FULL the primary key is still the key when
// there is one (old images are full either way); without one every column is.
// It returns an error naming the fix when updates and deletes could not be identified.
func keyColumns(t table, cols []column) ([]bool, error) {
	key := make([]bool, len(cols))
	found := false
	mark := func(pick func(column) bool) {
		for i, c := range cols {
			if pick(c) {
				key[i], found = true, true
			}
		}
	}
	switch t.identity {
	case 'd':
		mark(func(c column) bool { return c.pk })
	case 'i':
		mark(func(c column) bool { return c.ri })
	case 'f':
		mark(func(c column) bool { return c.pk })
		if !found {
			mark(func(column) bool { return true })
		}
	}
	if !found {
		return key, noIdentityError(t)
	}
	return key, nil
}

// keyOrder returns the schema indexes of sh's key columns in the order of the index
// behind the key (the primary key, or the replica identity index), so that a
// snapshot's ORDER BY walks that index. It returns nil when no index backs the key:
// REPLICA IDENTITY FULL without a primary key, where the whole row is the key.
func (c *catalog) keyOrder(ctx context.Context, t table, sh *tableShape) ([]int, error) {
	cond := "i.indisprimary"
	if t.identity == 'i' {
		cond = "i.indisreplident"
	}
	keyAtts := ""
	if c.version >= 110000 {
		keyAtts = "AND u.o <= i.indnkeyatts" // leave out INCLUDE columns
	}
	rows, err := c.conn.Query(ctx, `
SELECT a.attname
FROM pg_catalog.pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS u(attnum, o)
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum
WHERE i.indrelid = $1 AND `+cond+` `+keyAtts+`
ORDER BY u.o`, int64(t.oid))
	if err != nil {
		return nil, classify("read the key index of "+t.qualified(), err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, classify("read the key index of "+t.qualified(), err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, classify("read the key index of "+t.qualified(), err)
	}
	want := sh.schema.KeyIndexes()
	if len(names) == 0 {
		if len(want) == len(sh.schema.Columns) {
			return nil, nil
		}
		return want, nil
	}
	idx := make([]int, 0, len(names))
	for _, n := range names {
		i := sh.schema.Index(n)
		if i < 0 || !sh.schema.Columns[i].Key {
			// The index and the key disagree (changed in between): any fixed order
			// of the key columns is correct, only slower.
			return want, nil
		}
		idx = append(idx, i)
	}
	if len(idx) != len(want) {
		return want, nil
	}
	return idx, nil
}

func noIdentityError(t table) error {
	return permanentf("table %s has no primary key and no usable replica identity, so its updates and deletes cannot be streamed; fix: add a primary key, or run `ALTER TABLE %s REPLICA IDENTITY FULL;`", t.qualified(), t.ident())
}

// typeInfo returns the catalog description of a type (without a column's typmod),
// cached by OID. Arrays carry their element and domains their base type.
func (c *catalog) typeInfo(ctx context.Context, oid uint32) (*pgvalue.TypeInfo, error) {
	return c.typeInfoDepth(ctx, oid, 0)
}

func (c *catalog) typeInfoDepth(ctx context.Context, oid uint32, depth int) (*pgvalue.TypeInfo, error) {
	if t, ok := c.types[oid]; ok {
		return t, nil
	}
	if depth > 16 {
		return nil, fmt.Errorf("postgres: type %d: elements or domains nested too deep", oid)
	}
	var typ, cat, name string
	var elem, base int64
	var typmod int32
	err := c.conn.QueryRow(ctx, `
SELECT t.typtype::text, t.typcategory::text, t.typelem::int8, t.typbasetype::int8, t.typtypmod,
       pg_catalog.format_type(t.oid, NULL)
FROM pg_catalog.pg_type t WHERE t.oid = $1`, int64(oid)).Scan(&typ, &cat, &elem, &base, &typmod, &name)
	if err != nil {
		return nil, classify(fmt.Sprintf("read type %d", oid), err)
	}
	t := &pgvalue.TypeInfo{OID: oid, Name: name, Typmod: -1}
	if typ != "" {
		t.Type = typ[0]
	}
	if cat != "" {
		t.Category = cat[0]
	}
	if t.Category == 'A' && elem != 0 {
		e, err := c.typeInfoDepth(ctx, uint32(elem), depth+1)
		if err != nil {
			return nil, err
		}
		t.Elem = e
	}
	if t.Type == 'd' && base != 0 {
		b, err := c.typeInfoDepth(ctx, uint32(base), depth+1)
		if err != nil {
			return nil, err
		}
		bc := *b
		bc.Typmod = typmod
		if bc.Elem != nil && typmod >= 0 {
			ec := *bc.Elem
			ec.Typmod = typmod
			bc.Elem = &ec
		}
		t.Base = &bc
	}
	c.types[oid] = t
	return t, nil
}

// forget drops a cached type, after a pgoutput Type message announced it.
func (c *catalog) forget(oid uint32) { delete(c.types, oid) }

// columnType is a column's TypeInfo: the cached type with the column's own name,
// typmod (which also applies to an array's elements) and declared dimensions.
func columnType(base *pgvalue.TypeInfo, name string, typmod int32, dims int) pgvalue.TypeInfo {
	t := *base
	t.Name, t.Typmod, t.Dims = name, typmod, dims
	if t.Elem != nil {
		e := *t.Elem
		e.Typmod = typmod
		t.Elem = &e
	}
	return t
}

// tableShape is a schema version with the codecs of its columns.
type tableShape struct {
	schema *record.Schema
	codecs []*pgvalue.Codec
	known  []bool
}

// shape builds the schema of cols (key flags given) and its codecs.
func (c *catalog) shape(ctx context.Context, namespace, name string, cols []column, key []bool) (*tableShape, error) {
	sh := &tableShape{codecs: make([]*pgvalue.Codec, len(cols)), known: make([]bool, len(cols))}
	rc := make([]record.Column, len(cols))
	for i, col := range cols {
		base, err := c.typeInfo(ctx, col.typOID)
		if err != nil {
			return nil, err
		}
		codec, known := pgvalue.NewCodec(columnType(base, col.typeName, col.typmod, col.dims))
		sh.codecs[i], sh.known[i] = codec, known
		rc[i] = record.Column{Name: col.name, SourceType: col.typeName, Type: codec.Type(), Nullable: !col.notNull, Key: key[i]}
	}
	sh.schema = record.NewSchema(namespace, name, rc)
	return sh, nil
}

// relationColumns describes the columns of a pgoutput Relation message, completing
// it from the catalog: the formatted type name, NOT NULL, declared dimensions and the
// primary key (which REPLICA IDENTITY FULL relations do not flag). rowKey reports
// that the key is the whole row (REPLICA IDENTITY FULL without a primary key), where
// an update changes "the key" without being a key change.
func (c *catalog) relationColumns(ctx context.Context, rel *pglogrepl.RelationMessage) (cols []column, key []bool, rowKey bool, err error) {
	n := len(rel.Columns)
	oids, mods, names := make([]int64, n), make([]int32, n), make([]string, n)
	for i, col := range rel.Columns {
		oids[i], mods[i], names[i] = int64(col.DataType), col.TypeModifier, col.Name
	}
	rows, err := c.conn.Query(ctx, `
SELECT pg_catalog.format_type(u.t::oid, u.m), coalesce(a.attnotnull, false), coalesce(a.attndims, 0),
       coalesce(EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY (i.indkey)), false)
FROM unnest($2::int8[], $3::int4[], $4::text[]) WITH ORDINALITY AS u(t, m, n, o)
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = $1 AND a.attname = u.n AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY u.o`, int64(rel.RelationID), oids, mods, names)
	if err != nil {
		return nil, nil, false, classify("describe relation "+rel.Namespace+"."+rel.RelationName, err)
	}
	defer rows.Close()
	cols = make([]column, 0, n)
	for rows.Next() {
		i := len(cols)
		if i >= n {
			break
		}
		col := column{name: names[i], typOID: uint32(oids[i]), typmod: mods[i]}
		var dims int32
		if err := rows.Scan(&col.typeName, &col.notNull, &dims, &col.pk); err != nil {
			return nil, nil, false, classify("describe relation "+rel.Namespace+"."+rel.RelationName, err)
		}
		col.dims = int(dims)
		cols = append(cols, col)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, false, classify("describe relation "+rel.Namespace+"."+rel.RelationName, err)
	}
	if len(cols) != n {
		return nil, nil, false, fmt.Errorf("postgres: describe relation %s.%s: got %d columns, want %d", rel.Namespace, rel.RelationName, len(cols), n)
	}
	key = make([]bool, n)
	anyPK := false
	for i, col := range cols {
		anyPK = anyPK || col.pk
		key[i] = rel.Columns[i].Flags&1 != 0
	}
	if rel.ReplicaIdentity == 'f' && anyPK {
		for i, col := range cols {
			key[i] = col.pk
		}
	}
	return cols, key, rel.ReplicaIdentity == 'f' && !anyPK, nil
}

// sameShape reports whether two schemas describe the same columns.
func sameShape(a, b *record.Schema) bool {
	if len(a.Columns) != len(b.Columns) {
		return false
	}
	for i := range a.Columns {
		x, y := a.Columns[i], b.Columns[i]
		if x.Name != y.Name || x.SourceType != y.SourceType || x.Nullable != y.Nullable || x.Key != y.Key || !sameType(x.Type, y.Type) {
			return false
		}
	}
	return true
}

func sameType(a, b record.Type) bool {
	if a.Kind != b.Kind || a.Precision != b.Precision || a.Scale != b.Scale {
		return false
	}
	if a.Elem == nil || b.Elem == nil {
		return a.Elem == nil && b.Elem == nil
	}
	return sameType(*a.Elem, *b.Elem)
}

// slotInfo is a row of pg_replication_slots.
type slotInfo struct {
	exists    bool
	plugin    string
	database  string
	slotType  string
	confirmed pglogrepl.LSN
	active    bool
}

func (c *catalog) slot(ctx context.Context, name string) (slotInfo, error) {
	var s slotInfo
	var confirmed *string
	var plugin, db *string
	err := c.conn.QueryRow(ctx, `
SELECT slot_type, plugin, database, confirmed_flush_lsn::text, active
FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, name).Scan(&s.slotType, &plugin, &db, &confirmed, &s.active)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, classify("read slot "+name, err)
	}
	s.exists = true
	if plugin != nil {
		s.plugin = *plugin
	}
	if db != nil {
		s.database = *db
	}
	if confirmed != nil {
		if s.confirmed, err = pglogrepl.ParseLSN(*confirmed); err != nil {
			return s, fmt.Errorf("postgres: slot %s: confirmed_flush_lsn %q: %w", name, *confirmed, err)
		}
	}
	return s, nil
}

// publication is what pg_publication says about one publication.
type publication struct {
	exists    bool
	allTables bool
	viaRoot   bool
	tables    map[uint32]bool
}

func (c *catalog) publication(ctx context.Context, name string) (publication, error) {
	var p publication
	viaRoot := "false"
	if c.version >= 130000 {
		viaRoot = "p.pubviaroot"
	}
	var oid int64
	err := c.conn.QueryRow(ctx, `SELECT p.oid::int8, p.puballtables, `+viaRoot+` FROM pg_catalog.pg_publication p WHERE p.pubname = $1`, name).Scan(&oid, &p.allTables, &p.viaRoot)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, classify("read publication "+name, err)
	}
	p.exists = true
	p.tables = map[uint32]bool{}
	rows, err := c.conn.Query(ctx, `SELECT prrelid::int8 FROM pg_catalog.pg_publication_rel WHERE prpubid = $1`, oid)
	if err != nil {
		return p, classify("read tables of publication "+name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var rel int64
		if err := rows.Scan(&rel); err != nil {
			return p, classify("read tables of publication "+name, err)
		}
		p.tables[uint32(rel)] = true
	}
	return p, classify("read tables of publication "+name, rows.Err())
}

// ensurePublication creates the publication for exactly the selected tables, or
// changes an existing one to that set. A FOR ALL TABLES publication is left alone.
func (c *catalog) ensurePublication(ctx context.Context, name string, tables []table) (changed string, err error) {
	p, err := c.publication(ctx, name)
	if err != nil {
		return "", err
	}
	idents := make([]string, len(tables))
	same := p.exists && len(p.tables) == len(tables)
	for i, t := range tables {
		idents[i] = t.ident()
		same = same && p.tables[t.oid]
	}
	list := strings.Join(idents, ", ")
	with := ""
	if c.version >= 130000 {
		with = " WITH (publish_via_partition_root = true)"
	}
	pub := pgx.Identifier{name}.Sanitize()
	var sql string
	switch {
	case !p.exists && len(tables) == 0:
		// Only globs that match nothing yet: the tables join once they exist.
		sql, changed = "CREATE PUBLICATION "+pub+with, "created"
	case !p.exists:
		sql, changed = "CREATE PUBLICATION "+pub+" FOR TABLE "+list+with, "created"
	case p.allTables || same || len(tables) == 0:
		return "", nil
	default:
		sql, changed = "ALTER PUBLICATION "+pub+" SET TABLE "+list, "altered"
	}
	if _, err := c.conn.Exec(ctx, sql); err != nil {
		return "", classify(fmt.Sprintf("%s (run it as the tables' owner, or create the publication yourself)", sql), err)
	}
	return changed, nil
}
