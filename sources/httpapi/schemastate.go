package httpapi

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/connectd/connectd/record"
)

// stateFormat is the version of State's layout; RestoreTracker refuses others.
const stateFormat = 1

// trackerState is what State saves: the columns in their order, with what inference
// learned about each.
type trackerState struct {
	Format  int           `json:"format"`
	Version int           `json:"version"`
	Columns []stateColumn `json:"columns"`
}

type stateColumn struct {
	Name     string   `json:"name"`
	Path     string   `json:"path"`
	Kind     string   `json:"kind"`
	Declared string   `json:"declared,omitempty"`
	Key      bool     `json:"key,omitempty"`
	Seen     []string `json:"seen,omitempty"`
}

// State is the schema to save in the source's state store, as JSON, so that a restart
// keeps the columns' order and types (RestoreTracker). It changes when Observe
// reports a change, and may also record finer facts (an int64 beyond a double's
// precision) that matter only to the records of the current run.
func (t *Tracker) State() []byte {
	st := trackerState{Format: stateFormat, Version: t.version}
	for _, c := range t.cols {
		if !c.typed() {
			continue
		}
		sc := stateColumn{Name: c.name, Path: c.path, Kind: c.kind.String(), Declared: c.declared, Key: c.key}
		for i, name := range classNames {
			if c.seen&(1<<i) != 0 {
				sc.Seen = append(sc.Seen, name)
			}
		}
		st.Columns = append(st.Columns, sc)
	}
	b, err := json.Marshal(st)
	if err != nil {
		panic(fmt.Sprintf("httpapi: marshal tracker state: %v", err)) // strings and ints only
	}
	return b
}

// RestoreTracker is NewTracker continuing from a State saved by an earlier run (none
// when data is empty). Columns keep their saved order and inferred types; the config
// of this run decides which are keys and declared: key columns move to the front, a
// column declared now takes its declared type in its old place, a column no longer
// declared is dropped (its field is inferred anew, appended), as is an inferred column
// whose value a declared column now reads; newly declared columns are appended.
func RestoreTracker(data []byte, namespace, table string, key []string, declared []ColumnDecl, inf Inference) (*Tracker, error) {
	fresh, err := NewTracker(namespace, table, key, declared, inf)
	if err != nil || len(data) == 0 {
		return fresh, err
	}
	var st trackerState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("stream %q: restore schema: %w", table, err)
	}
	if st.Format != stateFormat {
		return nil, fmt.Errorf("stream %q: restore schema: state format %d, want %d", table, st.Format, stateFormat)
	}
	saved, err := savedColumns(st.Columns)
	if err != nil {
		return nil, fmt.Errorf("stream %q: restore schema: %w", table, err)
	}

	t := &Tracker{namespace: namespace, table: table, inf: inf, version: st.Version,
		claimed: map[string]bool{}, declaredAbove: map[string]bool{},
		byPath: map[string]int{}, objects: map[string]int{}, names: map[string]int{}}
	placed := make([]bool, len(fresh.cols))
	byName := map[string]int{} // fresh (config) columns by name
	for i, c := range fresh.cols {
		byName[c.name] = i
	}
	// The key first, in the key's order, then the saved columns in their order, then
	// the declared columns the saved state did not have.
	cols := make([]column, 0, len(fresh.cols)+len(saved))
	for i, c := range fresh.cols {
		if !c.key {
			continue
		}
		if j := slices.IndexFunc(saved, func(s column) bool { return s.name == c.name }); j >= 0 && c.declared == "" && saved[j].declared == "" && saved[j].path == c.path {
			c.kind, c.seen = saved[j].kind, saved[j].seen
			if c.kind == record.KindJSON {
				return nil, fmt.Errorf("stream %q: key: %s was inferred as json; a key column must hold scalars", table, c.name)
			}
		}
		cols, placed[i] = append(cols, c), true
	}
	for _, s := range saved {
		i, inConfig := byName[s.name]
		switch {
		case inConfig && placed[i]: // a key, placed
		case inConfig:
			cols, placed[i] = append(cols, fresh.cols[i]), true
		case s.declared != "":
			// No longer declared.
		case fresh.claimed[s.path] || under(s.tokens, fresh.claimed):
			// A declared column now reads its value.
		default:
			s.key = false
			cols = append(cols, s)
		}
	}
	for i, c := range fresh.cols {
		if !placed[i] {
			cols = append(cols, c)
		}
	}
	t.cols = cols
	for i := range t.cols {
		c := &t.cols[i]
		if j, taken := t.names[fold(c.name)]; taken {
			return nil, fmt.Errorf("stream %q: restore schema: column %s (from %s) has the name of column %s (from %s); rename the declared one", table, c.name, c.path, t.cols[j].name, t.cols[j].path)
		}
		t.index(i)
	}
	if !sameShape(savedSchema(namespace, table, st), t.Schema()) {
		t.version++
		t.schema = nil
	}
	return t, nil
}

// savedColumns checks and decodes saved columns.
func savedColumns(scs []stateColumn) ([]column, error) {
	kinds := map[string]record.Kind{}
	for _, k := range []record.Kind{record.KindBool, record.KindInt64, record.KindFloat64, record.KindDecimalText,
		record.KindString, record.KindJSON, record.KindTimestampTZ, record.KindDate} {
		kinds[k.String()] = k
	}
	var cols []column
	for _, sc := range scs {
		tokens, err := parsePointer(sc.Path)
		if err != nil {
			return nil, fmt.Errorf("column %q: path: %w", sc.Name, err)
		}
		c := column{name: sc.Name, path: pointer(tokens), tokens: tokens, kind: kinds[sc.Kind], declared: sc.Declared, key: sc.Key}
		for _, name := range sc.Seen {
			i := slices.Index(classNames, name)
			if i < 0 {
				return nil, fmt.Errorf("column %q: unknown value class %q", sc.Name, name)
			}
			c.seen |= 1 << i
		}
		switch {
		case c.name == "" || !c.typed():
			return nil, fmt.Errorf("column %q: kind %q", sc.Name, sc.Kind)
		case c.declared != "":
			if typ, ok := declKinds[c.declared]; !ok || typ.Kind != c.kind {
				return nil, fmt.Errorf("column %q: declared %q of kind %s", sc.Name, sc.Declared, sc.Kind)
			}
		case c.seen == 0:
			return nil, fmt.Errorf("column %q: no value classes", sc.Name)
		case c.kind == record.KindJSON:
		case c.seen&containers != 0 || scalarKind(c.seen) != c.kind:
			return nil, fmt.Errorf("column %q: kind %s does not hold %s", sc.Name, sc.Kind, c.seen.jsonTypes())
		}
		if slices.ContainsFunc(cols, func(o column) bool {
			return o.name == c.name || o.path == c.path && c.declared == "" && o.declared == ""
		}) {
			return nil, fmt.Errorf("column %q (%s) is saved twice", sc.Name, sc.Path)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// under reports whether tokens lie below one of the paths.
func under(tokens []string, paths map[string]bool) bool {
	for n := 1; n < len(tokens); n++ {
		if paths[pointer(tokens[:n])] {
			return true
		}
	}
	return false
}

// savedSchema is the schema the saved state describes.
func savedSchema(namespace, table string, st trackerState) *record.Schema {
	cols, err := savedColumns(st.Columns)
	if err != nil {
		return nil
	}
	t := &Tracker{namespace: namespace, table: table, cols: cols}
	return t.Schema()
}

// sameShape reports whether two schemas have the same columns, types and source types.
func sameShape(a, b *record.Schema) bool {
	if a == nil || b == nil || a.Fingerprint() != b.Fingerprint() || len(a.Columns) != len(b.Columns) {
		return false
	}
	for i := range a.Columns {
		if a.Columns[i].SourceType != b.Columns[i].SourceType {
			return false
		}
	}
	return true
}
