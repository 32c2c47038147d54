package postgres

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/connectd/connectd/record"
	"github.com/jackc/pgx/v5"
)

// dialect is PostgreSQL's SQL for the warehouse core.
type dialect struct {
	merge bool // the server runs MERGE (15 and later)
}

func (d dialect) Merge() bool { return d.merge }

func (dialect) Ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// ColumnType spells types as format_type does, which is how Columns reads them back.
func (dialect) ColumnType(t record.Type) (string, error) {
	switch t.Kind {
	case record.KindList:
		if t.Elem == nil || t.Elem.Kind == record.KindList {
			return "", fmt.Errorf("%s: PostgreSQL arrays of arrays are not lists of lists", t)
		}
		e, err := dialect{}.ColumnType(*t.Elem)
		return e + "[]", err
	case record.KindDecimal:
		return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale), nil
	}
	if n, ok := typeNames[t.Kind]; ok {
		return n, nil
	}
	return "", fmt.Errorf("no PostgreSQL type for %s", t)
}

var typeNames = map[record.Kind]string{
	record.KindBool: "boolean", record.KindInt16: "smallint", record.KindInt32: "integer",
	record.KindInt64: "bigint", record.KindUint64: "numeric(20,0)", record.KindFloat32: "real",
	record.KindFloat64: "double precision", record.KindDecimalText: "numeric", record.KindString: "text",
	record.KindBytes: "bytea", record.KindDate: "date", record.KindTime: "time without time zone",
	record.KindTimestamp: "timestamp without time zone", record.KindTimestampTZ: "timestamp with time zone",
	record.KindUUID: "uuid", record.KindJSON: "jsonb",
}

// logical maps a format_type spelling back to the logical type it holds; KindInvalid
// for one connectd never writes.
func logical(typ string) record.Type {
	if e, ok := strings.CutSuffix(typ, "[]"); ok {
		et := logical(e)
		if et.Kind == record.KindInvalid {
			return record.Type{}
		}
		return record.Type{Kind: record.KindList, Elem: &et}
	}
	if args, ok := strings.CutPrefix(typ, "numeric("); ok {
		p, s, _ := strings.Cut(strings.TrimSuffix(args, ")"), ",")
		prec, err1 := strconv.Atoi(p)
		scale, err2 := strconv.Atoi(s)
		if err1 != nil || err2 != nil || prec > 38 || scale < 0 || scale > prec {
			return record.Type{Kind: record.KindDecimalText, Scale: -1}
		}
		return record.Type{Kind: record.KindDecimal, Precision: prec, Scale: scale}
	}
	for k, n := range typeNames {
		if n == typ && k != record.KindUint64 {
			t := record.Type{Kind: k}
			if k == record.KindDecimalText {
				t.Scale = -1
			}
			return t
		}
	}
	switch {
	case strings.HasPrefix(typ, "character varying"), strings.HasPrefix(typ, "character("), typ == "character", typ == "name":
		return record.Type{Kind: record.KindString}
	case strings.HasPrefix(typ, "timestamp(") && strings.HasSuffix(typ, "with time zone"):
		return record.Type{Kind: record.KindTimestampTZ}
	case strings.HasPrefix(typ, "timestamp(") && strings.HasSuffix(typ, "without time zone"):
		return record.Type{Kind: record.KindTimestamp}
	case typ == "json":
		return record.Type{Kind: record.KindJSON}
	}
	return record.Type{}
}

// PositionType compares byte by byte whatever the database's collation: positions
// are hex, and their order is the source's.
func (dialect) PositionType() string { return `text COLLATE "C"` }

func (d dialect) CreateStaging(name, columns string) string {
	return "CREATE TEMP TABLE " + d.Ident(name) + " (" + columns + ") ON COMMIT DROP"
}

// DropStaging drops the staging table as soon as its table is merged: one flush merges
// each of its tables through a staging table of the same name, in one transaction
// (ON COMMIT DROP only cleans up after a failed flush, whose rollback removes it).
func (d dialect) DropStaging(name string) string { return "DROP TABLE " + d.Ident(name) }

func (dialect) ForUpdate() string { return " FOR UPDATE" }
