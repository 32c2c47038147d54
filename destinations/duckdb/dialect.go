package duckdb

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

// dialect is DuckDB's SQL for the warehouse core.
type dialect struct{}

var (
	_ warehouse.Dialect = dialect{}
	_ warehouse.Rekeyer = dialect{}
)

// Ident quotes an identifier. DuckDB matches even quoted identifiers without regard
// to case (it keeps the case it was given): two source names that differ only in
// case cannot both be columns of one table.
func (dialect) Ident(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// scalarTypes are the DDL types of the kinds without parameters, spelled as
// duckdb_columns() reports them, so that a type read back equals the type created.
var scalarTypes = map[record.Kind]string{
	record.KindBool:        "BOOLEAN",
	record.KindInt16:       "SMALLINT",
	record.KindInt32:       "INTEGER",
	record.KindInt64:       "BIGINT",
	record.KindUint64:      "UBIGINT",
	record.KindFloat32:     "FLOAT",
	record.KindFloat64:     "DOUBLE",
	record.KindDecimalText: "VARCHAR", // DuckDB has no numeric of unbounded precision
	record.KindString:      "VARCHAR",
	record.KindBytes:       "BLOB",
	record.KindDate:        "DATE",
	record.KindTime:        "TIME",
	record.KindTimestamp:   "TIMESTAMP",
	record.KindTimestampTZ: "TIMESTAMP WITH TIME ZONE",
	record.KindUUID:        "UUID",
	record.KindJSON:        "JSON", // the json extension is linked into the driver
}

// ColumnType is the DuckDB type of a logical type.
func (dialect) ColumnType(t record.Type) (string, error) {
	switch t.Kind {
	case record.KindDecimal:
		if t.Precision < 1 || t.Precision > 38 || t.Scale < 0 || t.Scale > t.Precision {
			return "", fmt.Errorf("DuckDB's DECIMAL holds precision 1..38 and a scale up to the precision, not %s", t)
		}
		return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale), nil
	case record.KindList:
		if t.Elem == nil {
			return "", fmt.Errorf("a list of unknown elements has no DuckDB type")
		}
		elem, err := dialect{}.ColumnType(*t.Elem)
		if err != nil {
			return "", err
		}
		return elem + "[]", nil
	}
	if s, ok := scalarTypes[t.Kind]; ok {
		return s, nil
	}
	return "", fmt.Errorf("no DuckDB type for %s", t)
}

// PositionType is VARCHAR: DuckDB compares text byte by byte unless a collation is
// asked for, and positions are hex.
func (dialect) PositionType() string { return "VARCHAR" }

// CreateStaging creates a temporary table, which only this connection sees.
func (d dialect) CreateStaging(name, columns string) string {
	return "CREATE OR REPLACE TEMP TABLE " + d.Ident(name) + " (" + columns + ")"
}

// DropStaging drops the staging table: a temporary table lives as long as the
// connection, not the transaction. The name is qualified so that it can never name
// a table of the database (unqualified, temp is searched first).
func (d dialect) DropStaging(name string) string { return "DROP TABLE " + stagingName(name) }

// stagingName is a temporary table's full name: DuckDB keeps them in the schema main
// of the catalog temp.
func stagingName(name string) string { return "temp.main." + dialect{}.Ident(name) }

// ForUpdate is empty: a DuckDB file has one writing process, and this destination
// one connection in it.
func (dialect) ForUpdate() string { return "" }

// Rekey rebuilds the table: DuckDB neither drops nor replaces a primary key.
func (d dialect) Rekey(schema, table, keys string) string {
	name := d.Ident(schema) + "." + d.Ident(table)
	next := d.Ident(schema) + "." + d.Ident(table+"_rekeyed")
	return fmt.Sprintf("CREATE TABLE %s (<the columns of %s>, PRIMARY KEY (%s)); INSERT INTO %s SELECT * FROM %s; DROP TABLE %s; ALTER TABLE %s RENAME TO %s",
		next, name, keys, next, name, name, next, d.Ident(table))
}

// parseType maps a type as duckdb_columns() spells it back to the logical type it
// holds; KindInvalid for a type connectd does not write (TINYINT, HUGEINT,
// INTERVAL, STRUCT, ...). VARCHAR reads back as a string: a decimal_text column is a
// VARCHAR too, and the loader writes either into it.
func parseType(s string) record.Type {
	if elem, ok := strings.CutSuffix(s, "[]"); ok {
		e := parseType(elem)
		if e.Kind == record.KindInvalid {
			return record.Type{}
		}
		return record.Type{Kind: record.KindList, Elem: &e}
	}
	if args, ok := strings.CutPrefix(s, "DECIMAL("); ok {
		p, sc, ok := strings.Cut(strings.TrimSuffix(args, ")"), ",")
		prec, err1 := strconv.Atoi(p)
		scale, err2 := strconv.Atoi(sc)
		if !ok || err1 != nil || err2 != nil {
			return record.Type{}
		}
		return record.Type{Kind: record.KindDecimal, Precision: prec, Scale: scale}
	}
	for k, name := range scalarTypes {
		if name == s && k != record.KindDecimalText {
			return record.Type{Kind: k}
		}
	}
	return record.Type{}
}
