package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/go-openapi/jsonpointer"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/record"
)

// The schema of a stream: which columns its records become and of which types. The
// rules (the widening lattice, flattening, declared types, what survives a restart)
// are in README.md; this file keeps them and points there.

// ColumnDecl is one declared column of a stream's `schema`: a value whose type the
// config fixes instead of leaving it to inference.
type ColumnDecl struct {
	Name string `yaml:"name" required:"true" doc:"The column's name in the lake; names are case-sensitive in records but must differ in more than case from every other column's."`
	Type string `yaml:"type" required:"true" enum:"bool,int,float,decimal,string,timestamp,date,json" doc:"bool, int (64-bit), float (double), decimal (exact, kept as text), string (any value; non-strings as their JSON text), timestamp (RFC 3339, stored as UTC microseconds), date (YYYY-MM-DD) or json. A declared type never widens: a value that does not fit it stops the stream with an error naming the record."`
	Path string `yaml:"path" defaultdoc:"/<name>" doc:"JSON pointer (RFC 6901) of the value in the record, such as /customer/id; a missing or null value is NULL."`
}

// Validate checks the path's syntax; NewTracker checks what involves other columns
// and the key.
func (d *ColumnDecl) Validate(v *config.Validation) {
	if v.Set("path") {
		if _, err := parsePointer(d.Path); err != nil {
			v.Errorf("path", "%v", err)
		}
	}
}

// Inference says how fields that no ColumnDecl reads become columns.
type Inference struct {
	// Flatten is how many levels of nested objects are flattened into columns named
	// parent_child; objects below that depth, and every array, are JSON columns.
	Flatten int
	// DeclaredOnly ignores the fields that neither a declared column nor the key reads.
	DeclaredOnly bool
}

// declared types, their kinds in the lake.
var declKinds = map[string]record.Type{
	"bool":      {Kind: record.KindBool},
	"int":       {Kind: record.KindInt64},
	"float":     {Kind: record.KindFloat64},
	"decimal":   {Kind: record.KindDecimalText, Scale: -1},
	"string":    {Kind: record.KindString},
	"timestamp": {Kind: record.KindTimestampTZ},
	"date":      {Kind: record.KindDate},
	"json":      {Kind: record.KindJSON},
}

// column is one column of the tracked schema.
type column struct {
	name   string
	path   string   // JSON pointer, escaped: the column's identity
	tokens []string // path, decoded
	// kind is KindInvalid for a key column whose type no record has shown yet; such a
	// column is left out of Schema and Row.
	kind     record.Kind
	declared string // the declared type; "" for an inferred column
	key      bool
	seen     classes // inferred columns: the classes of value seen, which decide kind
}

func (c *column) typed() bool { return c.kind != record.KindInvalid }

// Tracker infers and widens the schema of one stream from its records and converts
// records to rows of that schema. It is not safe for concurrent use.
type Tracker struct {
	namespace, table string
	inf              Inference
	cols             []column
	// claimed holds the paths of declared and key columns, which inference leaves
	// alone; declaredAbove the proper prefixes of declared paths.
	claimed       map[string]bool
	declaredAbove map[string]bool
	byPath        map[string]int // inferred, unclaimed columns
	objects       map[string]int // proper prefixes of inferred columns' paths: flattened objects
	names         map[string]int // folded name -> column
	version       int
	schema        *record.Schema
	buf           bytes.Buffer // JSON text of values being converted
}

// NewTracker starts the schema of stream table (in namespace) with its key columns
// first, then its declared columns. A key column that is not declared reads the
// record's top-level field of its name and gets its type from the first record.
func NewTracker(namespace, table string, key []string, declared []ColumnDecl, inf Inference) (*Tracker, error) {
	if inf.Flatten < 0 {
		return nil, fmt.Errorf("stream %q: flatten %d: want 0 or more levels", table, inf.Flatten)
	}
	t := &Tracker{namespace: namespace, table: table, inf: inf,
		claimed: map[string]bool{}, declaredAbove: map[string]bool{},
		byPath: map[string]int{}, objects: map[string]int{}, names: map[string]int{}}
	decls := make([]column, 0, len(declared))
	declAt := map[string]int{} // folded name -> index in declared
	for i, d := range declared {
		typ, ok := declKinds[d.Type]
		switch {
		case d.Name == "":
			return nil, fmt.Errorf("stream %q: schema[%d]: the column has no name", table, i)
		case !ok:
			return nil, fmt.Errorf("stream %q: schema[%d] (%s): type %q: want one of bool, int, float, decimal, string, timestamp, date, json", table, i, d.Name, d.Type)
		}
		if j, dup := declAt[fold(d.Name)]; dup {
			return nil, fmt.Errorf("stream %q: schema[%d] (%s): the name is taken by schema[%d] (%s); names must differ in more than case", table, i, d.Name, j, declared[j].Name)
		}
		declAt[fold(d.Name)] = i
		path := d.Path
		if path == "" {
			path = "/" + jsonpointer.Escape(d.Name)
		}
		tokens, err := parsePointer(path)
		if err != nil {
			return nil, fmt.Errorf("stream %q: schema[%d] (%s): path: %w", table, i, d.Name, err)
		}
		decls = append(decls, column{name: d.Name, path: pointer(tokens), tokens: tokens, kind: typ.Kind, declared: d.Type})
	}
	keyAt := map[string]bool{}
	for _, k := range key {
		switch {
		case k == "":
			return nil, fmt.Errorf("stream %q: key: an empty column name", table)
		case keyAt[k]:
			return nil, fmt.Errorf("stream %q: key: %s is named twice", table, k)
		}
		keyAt[k] = true
		if i, ok := declAt[fold(k)]; ok {
			if decls[i].name != k {
				return nil, fmt.Errorf("stream %q: key: %s: no such column (schema[%d] is %s; names are case-sensitive)", table, k, i, decls[i].name)
			}
			if decls[i].kind == record.KindJSON {
				return nil, fmt.Errorf("stream %q: key: %s is declared json; a key column must hold scalars", table, k)
			}
			decls[i].key = true
			t.cols = append(t.cols, decls[i])
			continue
		}
		tokens := []string{k}
		t.cols = append(t.cols, column{name: k, path: pointer(tokens), tokens: tokens, key: true})
	}
	for _, c := range decls {
		if !c.key {
			t.cols = append(t.cols, c)
		}
	}
	for i := range t.cols {
		t.index(i)
	}
	if len(decls) > 0 {
		t.version = 1
	}
	return t, nil
}

// index records column i in the tracker's lookups.
func (t *Tracker) index(i int) {
	c := &t.cols[i]
	t.names[fold(c.name)] = i
	if c.key || c.declared != "" {
		t.claimed[c.path] = true
		if c.declared != "" {
			for n := 1; n < len(c.tokens); n++ {
				t.declaredAbove[pointer(c.tokens[:n])] = true
			}
		}
		return
	}
	t.byPath[c.path] = i
	for n := 1; n < len(c.tokens); n++ {
		t.objects[pointer(c.tokens[:n])]++
	}
}

// Schema is the current schema: the key columns first (flagged Key, not nullable),
// then the others in the order they were declared or first seen, all nullable.
// SourceType is the declared type, or the JSON types an inferred column has held
// ("integer", "integer|number", "object"). Before the first record a key column
// that is not declared is missing.
func (t *Tracker) Schema() *record.Schema {
	if t.schema != nil {
		return t.schema
	}
	cols := make([]record.Column, 0, len(t.cols))
	for _, c := range t.cols {
		if !c.typed() {
			continue
		}
		typ := record.Type{Kind: c.kind}
		if c.kind == record.KindDecimalText {
			typ.Scale = -1
		}
		src := c.declared
		if src == "" {
			src = c.seen.jsonTypes()
		}
		cols = append(cols, record.Column{Name: c.name, SourceType: src, Type: typ, Nullable: !c.key, Key: c.key})
	}
	t.schema = record.NewSchema(t.namespace, t.table, cols)
	t.schema.Version = max(t.version, 1)
	return t.schema
}

// plan is what one record teaches the tracker, applied only when the whole record
// fits: a record that fails leaves the schema as it was.
type plan struct {
	updates []update
	added   []column
	err     *SchemaError // the error at the smallest path, so that it does not depend on map order
	errPath []string
}

type update struct {
	i    int
	kind record.Kind
	seen classes
}

func (p *plan) fail(path []string, err *SchemaError) {
	if p.err == nil || slices.Compare(path, p.errPath) < 0 {
		p.err, p.errPath = err, path
	}
}

// Observe widens the schema so that it holds rec: a field never seen becomes a new
// column (nullable, appended), and a value that an inferred column's type cannot hold
// widens the column (README.md, "Inference"). It reports whether Schema
// changed. A value that no widening can hold (an object where a number was), a value
// that does not fit a declared column, and a key column that is missing or null are
// a *SchemaError, and the schema stays as it was. Every record observed so far fits
// the schema Observe leaves, so Row succeeds on each of them.
func (t *Tracker) Observe(rec map[string]any) (changed bool, err error) {
	var p plan
	for i := range t.cols {
		c := &t.cols[i]
		if !c.key && c.declared == "" {
			continue
		}
		v := lookup(rec, c.tokens)
		switch {
		case v == nil && c.key:
			return false, t.missingKey(rec, c)
		case v == nil:
		case c.declared != "":
			if _, err := t.convert(c, v); err != nil {
				return false, t.declaredError(rec, c, v, err)
			}
		default: // a key column that is not declared
			t.infer(rec, &p, i, v)
		}
	}
	if !t.inf.DeclaredOnly {
		t.walk(rec, rec, nil, "", 0, &p)
	}
	if p.err != nil {
		return false, p.err
	}
	if len(p.added) > 0 {
		if err := t.checkNames(rec, &p); err != nil {
			return false, err
		}
	}
	return t.apply(&p), nil
}

// walk infers the fields of obj, an object at path prefix whose columns are named
// namePrefix_field.
func (t *Tracker) walk(rec, obj map[string]any, prefix []string, namePrefix string, depth int, p *plan) {
	for field, v := range obj {
		tokens := append(prefix[:len(prefix):len(prefix)], field)
		path := pointer(tokens)
		if t.claimed[path] {
			continue
		}
		if i, ok := t.byPath[path]; ok {
			t.infer(rec, p, i, v)
			continue
		}
		name := field
		if namePrefix != "" {
			name = namePrefix + "_" + field
		}
		m, isObject := v.(map[string]any)
		switch {
		case t.objects[path] > 0:
			// Flattened earlier: it stays flattened, whatever flatten says now, so
			// that its columns keep their names.
			if isObject {
				t.walk(rec, m, tokens, name, depth+1, p)
			} else if v != nil {
				p.fail(tokens, t.unflattened(rec, path, name, v))
			}
		case isObject && depth < t.inf.Flatten:
			t.walk(rec, m, tokens, name, depth+1, p)
		case t.declaredAbove[path]:
			// Holds a declared column's value: as a JSON column it would repeat it.
		case v == nil:
			// A null teaches nothing; the column comes with the first value.
		default:
			cls, err := classify(v)
			if err != nil {
				p.fail(tokens, t.schemaError(rec, name, "holds "+err.Error(), declareFix(&column{name: name, path: path}, "string")))
				continue
			}
			kind, _ := widen(record.KindInvalid, 0, cls) // a new column takes any value
			p.added = append(p.added, column{name: name, path: path, tokens: tokens, kind: kind, seen: cls})
		}
	}
}

// infer widens inferred column i so that it holds v.
func (t *Tracker) infer(rec map[string]any, p *plan, i int, v any) {
	if v == nil {
		return
	}
	c := &t.cols[i]
	cls, err := classify(v)
	if err != nil {
		p.fail(c.tokens, t.schemaError(rec, c.name, "holds "+err.Error(), declareFix(c, "string")))
		return
	}
	if c.key && cls&containers != 0 {
		p.fail(c.tokens, t.schemaError(rec, c.name, "is a key column and holds "+describe(cls), "a key column must hold scalars: choose another key"))
		return
	}
	kind, ok := widen(c.kind, c.seen, cls)
	if !ok {
		p.fail(c.tokens, t.schemaError(rec, c.name,
			fmt.Sprintf("was inferred as %s (JSON %s) and now holds %s, which an inferred column does not widen to", c.kind, c.seen.jsonTypes(), describe(cls)),
			declareFix(c, "json")))
		return
	}
	if seen := c.seen | cls; kind != c.kind || seen != c.seen {
		p.updates = append(p.updates, update{i: i, kind: kind, seen: seen})
	}
}

// checkNames orders the new columns and checks that no two columns share a name.
func (t *Tracker) checkNames(rec map[string]any, p *plan) error {
	// A record's fields come from a map, in no order: the new columns of one record
	// are appended in path order, the order of a depth-first walk by field name.
	sort.Slice(p.added, func(a, b int) bool { return slices.Compare(p.added[a].tokens, p.added[b].tokens) < 0 })
	taken := map[string]*column{} // folded name -> new column
	for i := range p.added {
		c := &p.added[i]
		if c.name == "" {
			return t.schemaError(rec, c.name, "is a field with an empty name at "+c.path, "declare it with a name: {name: <name>, path: "+c.path+", type: <type>}")
		}
		f := fold(c.name)
		other, ok := taken[f]
		if j, exists := t.names[f]; exists {
			other, ok = &t.cols[j], true
		}
		if ok {
			detail := fmt.Sprintf("from %s would have the name of the column from %s", c.path, other.path)
			if other.name != c.name {
				detail += fmt.Sprintf(", %s (names that differ only in case are one column to most lake readers)", other.name)
			}
			return t.schemaError(rec, c.name, detail,
				fmt.Sprintf("declare one of them under another name, e.g. {name: %s_2, path: %s, type: %s}", c.name, c.path, declType(c.kind)))
		}
		taken[f] = c
	}
	return nil
}

// apply makes the plan's changes and reports whether the schema changed.
func (t *Tracker) apply(p *plan) bool {
	changed := len(p.added) > 0
	for _, u := range p.updates {
		c := &t.cols[u.i]
		if u.kind != c.kind || u.seen.jsonTypes() != c.seen.jsonTypes() {
			changed = true
		}
		c.kind, c.seen = u.kind, u.seen
	}
	for _, c := range p.added {
		t.cols = append(t.cols, c)
		t.index(len(t.cols) - 1)
	}
	if changed {
		t.version++
		t.schema = nil
	}
	return changed
}

// Row converts rec to the values of the current schema, in its column order, into dst
// (reused when it has the capacity). Values have the Go types record.Kind lists:
// int64, float64, bool, string, record.Decimal (exact text), record.JSON (compact
// text, object members sorted by name), record.Timestamp (UTC microseconds),
// record.Date. A missing or null value is nil; a missing key column, or a value the
// schema cannot hold (one of a record not observed), is a *SchemaError.
func (t *Tracker) Row(rec map[string]any, dst []record.Value) ([]record.Value, error) {
	dst = dst[:0]
	for i := range t.cols {
		c := &t.cols[i]
		v := lookup(rec, c.tokens)
		if !c.typed() {
			if v == nil {
				return dst[:0], t.missingKey(rec, c)
			}
			continue
		}
		if v == nil {
			if c.key {
				return dst[:0], t.missingKey(rec, c)
			}
			dst = append(dst, nil)
			continue
		}
		x, err := t.convert(c, v)
		if err != nil {
			if c.declared != "" {
				return dst[:0], t.declaredError(rec, c, v, err)
			}
			return dst[:0], t.schemaError(rec, c.name, fmt.Sprintf("is %s and cannot hold %s: %v (was the record observed?)", c.kind, describeValue(v), err), "observe each record before converting it")
		}
		dst = append(dst, x)
	}
	return dst, nil
}

// SchemaError is a record the stream's schema cannot take. Retrying cannot help: the
// config (a declared column, the key, flatten) or the API's data has to change.
type SchemaError struct {
	Stream string
	Record string // the record's key values, such as `id=42`, or why there are none
	Column string
	Detail string // what is wrong, after the column's name
	Fix    string // what to do
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("stream %q, %s: column %q %s; %s", e.Stream, e.Record, e.Column, e.Detail, e.Fix)
}

func (t *Tracker) schemaError(rec map[string]any, col, detail, fix string) *SchemaError {
	return &SchemaError{Stream: t.table, Record: t.recordName(rec), Column: col, Detail: detail, Fix: fix}
}

func (t *Tracker) declaredError(rec map[string]any, c *column, v any, err error) *SchemaError {
	return t.schemaError(rec, c.name, fmt.Sprintf("is declared %s and cannot hold %s: %v", c.declared, describeValue(v), err),
		"correct the column's type in the stream's schema (string and json take any value), or the API's data")
}

func (t *Tracker) unflattened(rec map[string]any, path, name string, v any) *SchemaError {
	var cols []string
	for _, c := range t.cols {
		if !c.key && c.declared == "" && strings.HasPrefix(c.path, path+"/") {
			cols = append(cols, c.name)
		}
	}
	return t.schemaError(rec, name,
		fmt.Sprintf("was an object flattened into columns %s and now holds %s", strings.Join(cols, ", "), describeValue(v)),
		fmt.Sprintf("declare it as one column, e.g. {name: %s, path: %s, type: json}", name, path))
}

func (t *Tracker) missingKey(rec map[string]any, c *column) *SchemaError {
	e := t.schemaError(rec, c.name, "is missing or null", "every record needs a non-null value for each key column: check the stream's key")
	if c.path != "/"+jsonpointer.Escape(c.name) {
		e.Detail = fmt.Sprintf("(at %s) is missing or null", c.path)
	}
	var fields []string
	for f := range rec {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		if f != c.name && strings.EqualFold(f, c.name) && len(c.tokens) == 1 {
			e.Fix += fmt.Sprintf(" (the record has %q: names are case-sensitive)", f)
		}
	}
	if len(fields) > 20 {
		fields = append(fields[:20], "...")
	}
	e.Detail += fmt.Sprintf(" (the record's fields: %s)", strings.Join(fields, ", "))
	return e
}

// recordName names a record by its key values, for errors.
func (t *Tracker) recordName(rec map[string]any) string {
	var b strings.Builder
	for i := range t.cols {
		c := &t.cols[i]
		if !c.key {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.name + "=")
		switch v := lookup(rec, c.tokens).(type) {
		case nil:
			b.WriteString("(missing)")
		case string:
			b.WriteString(clip(fmt.Sprintf("%q", v)))
		default:
			b.WriteString(clip(fmt.Sprint(v)))
		}
	}
	if b.Len() == 0 {
		return "a record (the stream has no key)"
	}
	return "record " + b.String()
}

// declareFix suggests declaring column c with type typ.
func declareFix(c *column, typ string) string {
	path := ""
	if c.path != "/"+jsonpointer.Escape(c.name) {
		path = ", path: " + c.path
	}
	return fmt.Sprintf("declare the column in the stream's schema as %s (or string), e.g. {name: %s%s, type: %s}", typ, c.name, path, typ)
}

// declType is the declared type that holds what an inferred column of kind k does.
func declType(k record.Kind) string {
	switch k {
	case record.KindBool:
		return "bool"
	case record.KindInt64:
		return "int"
	case record.KindFloat64:
		return "float"
	case record.KindDecimalText:
		return "decimal"
	case record.KindJSON:
		return "json"
	}
	return "string"
}

// parsePointer parses a JSON pointer (RFC 6901) that names a value inside a record.
func parsePointer(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New(`want a JSON pointer such as "/id" or "/customer/id", not the whole record`)
	}
	p, err := jsonpointer.New(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a JSON pointer: it must start with /", s)
	}
	// The library unescapes any "~"; RFC 6901 allows only ~0 and ~1.
	for i := 0; i < len(s); i++ {
		if s[i] == '~' && (i+1 == len(s) || (s[i+1] != '0' && s[i+1] != '1')) {
			return nil, fmt.Errorf("%q is not a JSON pointer: ~ must be followed by 0 (for ~) or 1 (for /)", s)
		}
	}
	return p.DecodedTokens(), nil
}

// pointer is the JSON pointer of tokens.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(jsonpointer.Escape(t))
	}
	return b.String()
}

// lookup returns the value at tokens in rec, nil when there is none.
func lookup(rec map[string]any, tokens []string) any {
	var v any = rec
	for _, tok := range tokens {
		switch n := v.(type) {
		case map[string]any:
			v = n[tok]
		case []any:
			i, ok := arrayIndex(tok)
			if !ok || i >= len(n) {
				return nil
			}
			v = n[i]
		default:
			return nil
		}
	}
	return v
}

// arrayIndex parses a pointer token that indexes an array: digits, without leading
// zeros (RFC 6901, section 4).
func arrayIndex(tok string) (int, bool) {
	if tok == "" || len(tok) > 9 || (tok[0] == '0' && len(tok) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
		n = n*10 + int(tok[i]-'0')
	}
	return n, true
}

// fold is the form of a name in which names that differ only in case are equal.
func fold(s string) string { return strings.ToLower(s) }

func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
