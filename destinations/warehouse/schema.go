package warehouse

import (
	"fmt"
	"strings"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// CreateTable returns the statement that creates the target table of a source table.
func CreateTable(d Dialect, t Target, s *record.Schema) (string, error) {
	if t.Mode == Merge && len(s.KeyIndexes()) == 0 {
		return "", connector.Permanent(fmt.Errorf("source table %s has no primary key, so merge cannot keep a replica of it: add a key on the source, or load it in append mode (tables: [{match: %s, mode: append}])",
			s.QualifiedName(), s.QualifiedName()))
	}
	var defs, keys []string
	for _, c := range s.Columns {
		if isMeta(c.Name) {
			return "", connector.Permanent(fmt.Errorf("source table %s has a column named %s, which the target table uses for its metadata", s.QualifiedName(), c.Name))
		}
		typ, err := d.ColumnType(c.Type)
		if err != nil {
			return "", connector.Permanent(fmt.Errorf("source table %s, column %s (%s): %w", s.QualifiedName(), c.Name, c.SourceType, err))
		}
		def := d.Ident(c.Name) + " " + typ
		if c.Key && c.Nullable && t.Mode == Merge {
			return "", connector.Permanent(fmt.Errorf("source table %s has no primary key (its key column %s may be NULL: a REPLICA IDENTITY FULL table, say), so merge cannot keep a replica of it: add a primary key on the source, or load it in append mode (tables: [{match: %s, mode: append}])",
				s.QualifiedName(), c.Name, s.QualifiedName()))
		}
		if c.Key && t.Mode == Merge {
			def += " NOT NULL"
			keys = append(keys, d.Ident(c.Name))
		}
		defs = append(defs, def)
	}
	for _, m := range metaColumns(t.Mode, t.SoftDelete) {
		def, notNull, err := metaDef(d, m)
		if err != nil {
			return "", err
		}
		if notNull {
			def += " NOT NULL"
		}
		defs = append(defs, def)
	}
	if len(keys) > 0 {
		defs = append(defs, "PRIMARY KEY ("+strings.Join(keys, ", ")+")")
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n  %s\n)", qualified(d, t.Schema, t.Table), strings.Join(defs, ",\n  ")), nil
}

// metaDef is the column definition of a metadata column without its NOT NULL, which
// notNull says it has: CREATE TABLE writes it into the definition; ALTER TABLE adds
// the column without it, as DuckDB neither adds a column with a constraint nor sets
// one in the transaction that added the column (the default fills the rows the table
// has, and every load writes the column).
func metaDef(d Dialect, m LoadColumn) (def string, notNull bool, err error) {
	switch m.Name {
	case ColPos:
		return d.Ident(m.Name) + " " + d.PositionType(), true, nil
	case ColDeleted:
		typ, err := d.ColumnType(m.Type)
		return d.Ident(m.Name) + " " + typ + " DEFAULT false", true, err
	}
	typ, err := d.ColumnType(m.Type)
	if err != nil {
		return "", false, fmt.Errorf("metadata column %s: %w", m.Name, err)
	}
	return d.Ident(m.Name) + " " + typ, false, nil
}

func qualified(d Dialect, schema, table string) string {
	return d.Ident(schema) + "." + d.Ident(table)
}

// alter compares a source schema with the columns its target table has and returns
// the statements that make the table hold it: new columns added, widened types
// widened, missing metadata columns added. A change that cannot be applied without
// losing or reshaping data (a narrowed or changed type, another key) is a permanent
// error that says what to run. cols is updated to the table as the statements leave it.
func alter(d Dialect, t Target, s *record.Schema, cols *[]Column) ([]string, error) {
	name := qualified(d, t.Schema, t.Table)
	have := map[string]int{}
	for i, c := range *cols {
		have[c.Name] = i
	}
	var stmts []string
	add := func(def string, c Column) {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s", name, def))
		have[c.Name] = len(*cols)
		*cols = append(*cols, c)
	}
	var srcKeys []string
	for _, c := range s.Columns {
		if isMeta(c.Name) {
			return nil, connector.Permanent(fmt.Errorf("source table %s has a column named %s, which the target table uses for its metadata", s.QualifiedName(), c.Name))
		}
		if c.Key {
			srcKeys = append(srcKeys, c.Name)
		}
		want, err := d.ColumnType(c.Type)
		if err != nil {
			return nil, connector.Permanent(fmt.Errorf("source table %s, column %s (%s): %w", s.QualifiedName(), c.Name, c.SourceType, err))
		}
		i, ok := have[c.Name]
		if !ok {
			add(d.Ident(c.Name)+" "+want, Column{Name: c.Name, Type: want, Logical: c.Type})
			continue
		}
		tc := &(*cols)[i]
		switch {
		case tc.Type == want:
		case tc.Logical.Kind != record.KindInvalid && Widens(tc.Logical, c.Type):
			stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DATA TYPE %s", name, d.Ident(c.Name), want))
			tc.Type, tc.Logical = want, c.Type
		case tc.Logical.Kind != record.KindInvalid && Widens(c.Type, tc.Logical):
			return nil, connector.Permanent(fmt.Errorf("column %s of source table %s narrowed to %s (%s), and target table %s has %s: connectd does not narrow a target column (values could be cut). "+
				"To follow the source run on the target: ALTER TABLE %s ALTER COLUMN %s SET DATA TYPE %s; then start the connector again",
				c.Name, s.QualifiedName(), c.SourceType, want, name, tc.Type, name, d.Ident(c.Name), want))
		default:
			return nil, connector.Permanent(fmt.Errorf("column %s of source table %s changed to %s (%s), which target table %s cannot take in its %s column: "+
				"convert it on the target (ALTER TABLE %s ALTER COLUMN %s SET DATA TYPE %s USING ...), or drop the target table and reload it with `connectd offsets reset`; then start the connector again",
				c.Name, s.QualifiedName(), c.SourceType, want, name, tc.Type, name, d.Ident(c.Name), want))
		}
	}
	if t.Mode == Merge {
		var tgtKeys []string
		for _, c := range *cols {
			if c.Key {
				tgtKeys = append(tgtKeys, c.Name)
			}
		}
		if strings.Join(srcKeys, ",") != strings.Join(tgtKeys, ",") {
			hint := fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT <its primary key>, ADD PRIMARY KEY (%s)", name, identList(d, srcKeys))
			if r, ok := d.(Rekeyer); ok {
				hint = r.Rekey(t.Schema, t.Table, identList(d, srcKeys))
			}
			if len(tgtKeys) == 0 {
				hint = fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (%s)", name, identList(d, srcKeys))
			}
			if len(srcKeys) == 0 {
				return nil, connector.Permanent(fmt.Errorf("source table %s has no primary key any more, so merge cannot keep a replica of it in %s: load it in append mode (tables: [{match: %s, mode: append}]) into a new target table",
					s.QualifiedName(), name, s.QualifiedName()))
			}
			return nil, connector.Permanent(fmt.Errorf("the key of source table %s is (%s), but target table %s has primary key (%s): merging by another key would mix rows. "+
				"Make the target follow: %s (when its rows are unique by the new key), or drop it and reload it with `connectd offsets reset`; then start the connector again",
				s.QualifiedName(), strings.Join(srcKeys, ", "), name, strings.Join(tgtKeys, ", "), hint))
		}
	}
	for _, m := range metaColumns(t.Mode, t.SoftDelete) {
		if _, ok := have[m.Name]; ok {
			continue
		}
		def, _, err := metaDef(d, m)
		if err != nil {
			return nil, err
		}
		if m.Name == ColPos {
			// The rows the table has get a position too: an empty one sorts before
			// every real one.
			def += " DEFAULT ''"
		}
		typ, _ := d.ColumnType(m.Type)
		add(def, Column{Name: m.Name, Type: typ, Logical: m.Type})
	}
	return stmts, nil
}

func identList(d Dialect, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = d.Ident(n)
	}
	return strings.Join(q, ", ")
}

// Widens reports whether type to holds every value of type from, so that a column of
// type from can be changed to to without loss: a larger integer, a decimal with room
// for the digits on both sides of the point, a double for a real.
func Widens(from, to record.Type) bool {
	intDigits := map[record.Kind]int{record.KindInt16: 5, record.KindInt32: 10, record.KindInt64: 19, record.KindUint64: 20}
	switch {
	case from.Kind == to.Kind:
		switch from.Kind {
		case record.KindDecimal:
			return to.Scale >= from.Scale && to.Precision-to.Scale >= from.Precision-from.Scale
		case record.KindList:
			return from.Elem != nil && to.Elem != nil && (*from.Elem == *to.Elem || Widens(*from.Elem, *to.Elem))
		}
		return true
	case to.Kind == record.KindDecimalText:
		return intDigits[from.Kind] > 0 || from.Kind == record.KindDecimal
	case to.Kind == record.KindDecimal:
		return intDigits[from.Kind] > 0 && to.Precision-to.Scale >= intDigits[from.Kind]
	case from.Kind == record.KindFloat32:
		return to.Kind == record.KindFloat64
	}
	fi, ti := intDigits[from.Kind], intDigits[to.Kind]
	return fi > 0 && ti > fi && from.Kind != record.KindUint64 && to.Kind != record.KindUint64
}
