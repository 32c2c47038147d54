package duckdb

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

func list(elem record.Type) record.Type { return record.Type{Kind: record.KindList, Elem: &elem} }

func kind(k record.Kind) record.Type { return record.Type{Kind: k} }

// typeCases are one column per logical type, with the values that are hard to keep:
// extremes, NaN and infinities, negative dates, 24:00:00, decimals beyond 38 digits.
var typeCases = []struct {
	name string
	typ  record.Type
	vals []record.Value
}{
	{"b", kind(record.KindBool), []record.Value{true, false}},
	{"i16", kind(record.KindInt16), []record.Value{int16(math.MinInt16), int16(math.MaxInt16), int16(0)}},
	{"i32", kind(record.KindInt32), []record.Value{int32(math.MinInt32), int32(math.MaxInt32)}},
	{"i64", kind(record.KindInt64), []record.Value{int64(math.MinInt64), int64(math.MaxInt64), int64(-1)}},
	{"u64", kind(record.KindUint64), []record.Value{uint64(math.MaxUint64), uint64(0)}},
	{"f32", kind(record.KindFloat32), []record.Value{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.SmallestNonzeroFloat32), float32(math.MaxFloat32)}},
	{"f64", kind(record.KindFloat64), []record.Value{math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64, -math.MaxFloat64, 0.1}},
	{"d38", record.Type{Kind: record.KindDecimal, Precision: 38, Scale: 10}, []record.Value{
		record.Decimal("-1234567890123456789012345678.0123456789"), record.Decimal("0.0000000001"), record.Decimal("9999999999999999999999999999.9999999999"), record.Decimal("0")}},
	{"d5", record.Type{Kind: record.KindDecimal, Precision: 5, Scale: 2}, []record.Value{record.Decimal("-999.99"), record.Decimal("1.5"), record.Decimal("0.01")}},
	{"d18", record.Type{Kind: record.KindDecimal, Precision: 18, Scale: 0}, []record.Value{record.Decimal("-999999999999999999"), record.Decimal("42")}},
	{"dtext", record.Type{Kind: record.KindDecimalText, Scale: -1}, []record.Value{record.Decimal("NaN"), record.Decimal("-123456789012345678901234567890123456789012345.000000000000000000000000006789"), record.Decimal("Infinity")}},
	{"s", kind(record.KindString), []record.Value{"", "héllo ☃ \"quoted\" 'single'", strings.Repeat("long ", 100)}},
	{"by", kind(record.KindBytes), []record.Value{[]byte{0, 1, 0xff}, []byte{}}},
	{"dt", kind(record.KindDate), []record.Value{record.Date(-1), record.Date(-2_000_000), record.Date(2_932_896), record.Date(0)}},
	{"tm", kind(record.KindTime), []record.Value{record.Time(0), record.Time(86_399_999_999), record.Time(86_400_000_000), record.Time(45_296_000_001)}},
	{"ts", kind(record.KindTimestamp), []record.Value{record.TimestampInfinity, record.TimestampNegInfinity, record.Timestamp(-62_135_596_800_000_000), record.Timestamp(-1), record.Timestamp(253_402_300_799_999_999)}},
	{"tstz", kind(record.KindTimestampTZ), []record.Value{record.TimestampNegInfinity, record.TimestampInfinity, record.Timestamp(1_700_000_000_123_456), record.Timestamp(-86_400_000_001)}},
	{"id", kind(record.KindUUID), []record.Value{record.UUID{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00}, record.UUID{}, record.UUID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}},
	{"js", kind(record.KindJSON), []record.Value{record.JSON(`{"a": [1, 2.50, "é", "Ünïcode"],  "B": null}`), record.JSON(`[]`), record.JSON(`"text"`)}},
	{"li32", list(kind(record.KindInt32)), []record.Value{[]record.Value{int32(1), nil, int32(-3)}, []record.Value{}}},
	{"lstr", list(kind(record.KindString)), []record.Value{[]record.Value{"a", nil, ""}}},
	{"ldec", list(record.Type{Kind: record.KindDecimal, Precision: 10, Scale: 2}), []record.Value{[]record.Value{record.Decimal("1.50"), record.Decimal("-0.01"), nil}}},
	{"ltstz", list(kind(record.KindTimestampTZ)), []record.Value{[]record.Value{record.TimestampInfinity, record.Timestamp(0), record.TimestampNegInfinity, record.Timestamp(-5)}}},
	{"ltime", list(kind(record.KindTime)), []record.Value{[]record.Value{record.Time(86_400_000_000), record.Time(1)}}},
	{"lll", list(list(kind(record.KindInt64))), []record.Value{[]record.Value{[]record.Value{int64(1), int64(2)}, []record.Value{}, nil}}},
	{"ljs", list(kind(record.KindJSON)), []record.Value{[]record.Value{record.JSON(`{"x": 1}`), nil}}},
	{"luuid", list(kind(record.KindUUID)), []record.Value{[]record.Value{record.UUID{1, 2, 3}}}},
}

// TestEveryKindRoundTrips writes a row per value of every logical type (and a row
// of NULLs), reads the file back with a connection of its own and requires each
// value back as written.
func TestEveryKindRoundTrips(t *testing.T) {
	for _, mode := range []string{"merge", "append"} {
		t.Run(mode, func(t *testing.T) { roundTrip(t, mode) })
	}
}

func roundTrip(t *testing.T, mode string) {
	ctx := context.Background()
	cols := []record.Column{{Name: "k", SourceType: "int", Type: kind(record.KindInt32), Key: true}}
	rows := 0
	for _, c := range typeCases {
		cols = append(cols, record.Column{Name: c.name, SourceType: c.typ.String(), Type: c.typ, Nullable: true})
		rows = max(rows, len(c.vals))
	}
	schema := record.NewSchema("src", "kinds", cols)
	want := make([][]record.Value, rows+1) // the last row is all NULL
	var recs []record.Record
	for r := range want {
		row := []record.Value{int32(r)}
		for _, c := range typeCases {
			var v record.Value
			if r < rows {
				v = c.vals[r%len(c.vals)]
			}
			row = append(row, v)
		}
		want[r] = row
		recs = append(recs, record.Record{Op: record.OpCreate, Schema: schema, After: row, Pos: pos(r + 1), CommitTS: time.Unix(int64(r), 0).UTC()})
	}
	path := newPath(t)
	dst := open(ctx, t, "kinds", &Config{Path: path, Mode: mode})
	if err := dst.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := dst.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	dst.Close(ctx)

	// JSON as its text and TIME as microseconds: the driver decodes JSON, and reads
	// 24:00:00 as midnight.
	sel := []string{"k"}
	for _, c := range typeCases {
		col := `"` + c.name + `"`
		switch {
		case c.typ.Kind == record.KindJSON:
			sel = append(sel, col+"::VARCHAR")
		case c.typ.Kind == record.KindTime:
			sel = append(sel, "epoch_us("+col+")")
		case c.typ.Kind == record.KindList && c.typ.Elem.Kind == record.KindJSON:
			sel = append(sel, col+"::VARCHAR[]")
		case c.typ.Kind == record.KindList && c.typ.Elem.Kind == record.KindTime:
			sel = append(sel, "list_transform("+col+", lambda x: epoch_us(x))")
		default:
			sel = append(sel, col)
		}
	}
	db := readDB(t, path)
	res, err := db.QueryContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM main.kinds ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	n := 0
	for ; res.Next(); n++ {
		got := make([]any, len(sel))
		ptrs := make([]any, len(sel))
		for i := range got {
			ptrs[i] = &got[i]
		}
		if err := res.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if n >= len(want) {
			continue
		}
		for i, c := range typeCases {
			w := want[n][i+1]
			g, err := fromDuck(c.typ, got[i+1])
			if err != nil {
				t.Errorf("row %d, %s: %v", n, c.name, err)
				continue
			}
			if !sameValue(w, g) {
				t.Errorf("row %d, %s (%s): wrote %#v, read back %#v", n, c.name, c.typ, w, g)
			}
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("read back %d rows, wrote %d", n, len(want))
	}
	res.Close()
	db.Close()
	catalogReadsBackWhatWasCreated(t, path, mode)
}

// catalogReadsBackWhatWasCreated: each column's type, as Columns reads it from the
// catalog, is spelled as ColumnType spells it and maps back to the logical type, so
// that a restart finds nothing to alter.
func catalogReadsBackWhatWasCreated(t *testing.T, path, mode string) {
	ctx := context.Background()
	c, err := openConn(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	cols, err := c.Columns(ctx, "main", "kinds")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]warehouse.Column{}
	for _, col := range cols {
		got[col.Name] = col
	}
	if k := got["k"]; k.Key != (mode == "merge") || k.Type != "INTEGER" {
		t.Errorf("column k: %+v, want an INTEGER, the primary key in merge mode", k)
	}
	for _, tc := range typeCases {
		col, ok := got[tc.name]
		if !ok {
			t.Errorf("column %s is missing", tc.name)
			continue
		}
		want, _ := dialect{}.ColumnType(tc.typ)
		logical := tc.typ
		if logical.Kind == record.KindDecimalText {
			logical = kind(record.KindString) // both are VARCHAR
		}
		if col.Type != want || col.Logical.String() != logical.String() || col.Key {
			t.Errorf("column %s reads back as %q (%s, key %t); created as %q (%s)", tc.name, col.Type, col.Logical, col.Key, want, logical)
		}
	}
	if missing, err := c.Columns(ctx, "main", "no_such_table"); err != nil || missing != nil {
		t.Errorf("Columns of a missing table = %v, %v; want nil, nil", missing, err)
	}
}

// fromDuck turns what the driver scans for a column of logical type t into the
// record value it stands for.
func fromDuck(t record.Type, v any) (record.Value, error) {
	if v == nil {
		return nil, nil
	}
	switch t.Kind {
	case record.KindDecimal:
		d, ok := v.(duckdb.Decimal)
		if !ok {
			return nil, fmt.Errorf("a %T for a decimal", v)
		}
		r := new(big.Rat).SetFrac(d.Value, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Scale)), nil))
		return r, nil
	case record.KindDecimalText:
		return record.Decimal(v.(string)), nil
	case record.KindDate:
		return record.DateOf(v.(time.Time)), nil
	case record.KindTime:
		return record.Time(v.(int64)), nil
	case record.KindTimestamp, record.KindTimestampTZ:
		us := v.(time.Time).UnixMicro()
		if us == -math.MaxInt64 {
			return record.TimestampNegInfinity, nil // DuckDB's -infinity
		}
		return record.Timestamp(us), nil
	case record.KindUUID:
		b, ok := v.([]byte)
		if !ok || len(b) != 16 {
			return nil, fmt.Errorf("a %T (%v) for a uuid", v, v)
		}
		return record.UUID(b), nil
	case record.KindJSON:
		return record.JSON(v.(string)), nil
	case record.KindList:
		l, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("a %T for a list", v)
		}
		out := make([]record.Value, len(l))
		for i, e := range l {
			var err error
			if out[i], err = fromDuck(*t.Elem, e); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

// sameValue compares a written value with one read back: NaN equals NaN, a decimal
// equals its number (DuckDB pads it to the column's scale).
func sameValue(w, g record.Value) bool {
	switch w := w.(type) {
	case float32:
		g, ok := g.(float32)
		return ok && (w == g || math.IsNaN(float64(w)) && math.IsNaN(float64(g)))
	case float64:
		g, ok := g.(float64)
		return ok && (w == g || math.IsNaN(w) && math.IsNaN(g))
	case record.Decimal:
		if r, ok := g.(*big.Rat); ok {
			wr, ok := new(big.Rat).SetString(string(w))
			return ok && wr.Cmp(r) == 0
		}
	case []record.Value:
		g, ok := g.([]record.Value)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !sameValue(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(w, g)
}
