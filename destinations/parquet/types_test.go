package parquet

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/connectd/connectd/internal/testenv/lakedb"
	"github.com/connectd/connectd/record"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func typ(k record.Kind) record.Type { return record.Type{Kind: k} }

func dec(p, s int) record.Type { return record.Type{Kind: record.KindDecimal, Precision: p, Scale: s} }

func list(elem record.Type) record.Type { return record.Type{Kind: record.KindList, Elem: &elem} }

func mustUUID(s string) record.UUID {
	u, err := record.ParseUUID(s)
	if err != nil {
		panic(err)
	}
	return u
}

// typeCase is one column: its type, the value of each of the four test rows, what
// DuckDB shows for each (CAST AS VARCHAR, hex() for blobs), and DuckDB's type.
type typeCase struct {
	name  string
	typ   record.Type
	vals  [4]record.Value
	want  [4]string
	duck  string
	query string // the select expression; default CAST(name AS VARCHAR)
}

var typeCases = []typeCase{
	{name: "b", typ: typ(record.KindBool), duck: "BOOLEAN",
		vals: [4]record.Value{true, false, true, nil}, want: [4]string{"true", "false", "true", "NULL"}},
	{name: "i16", typ: typ(record.KindInt16), duck: "SMALLINT",
		vals: [4]record.Value{int16(7), int16(math.MaxInt16), int16(math.MinInt16), nil},
		want: [4]string{"7", "32767", "-32768", "NULL"}},
	{name: "i32", typ: typ(record.KindInt32), duck: "INTEGER",
		vals: [4]record.Value{int32(-7), int32(math.MaxInt32), int32(math.MinInt32), nil},
		want: [4]string{"-7", "2147483647", "-2147483648", "NULL"}},
	{name: "i64", typ: typ(record.KindInt64), duck: "BIGINT",
		vals: [4]record.Value{int64(1) << 40, int64(math.MaxInt64), int64(math.MinInt64), nil},
		want: [4]string{"1099511627776", "9223372036854775807", "-9223372036854775808", "NULL"}},
	{name: "u64", typ: typ(record.KindUint64), duck: "DECIMAL(20,0)",
		vals: [4]record.Value{uint64(0), uint64(math.MaxUint64), uint64(1) << 63, nil},
		want: [4]string{"0", "18446744073709551615", "9223372036854775808", "NULL"}},
	{name: "f32", typ: typ(record.KindFloat32), duck: "FLOAT",
		vals: [4]record.Value{float32(1.5), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))},
		want: [4]string{"1.5", "nan", "inf", "-inf"}},
	{name: "f64", typ: typ(record.KindFloat64), duck: "DOUBLE",
		vals: [4]record.Value{-2.25, math.Inf(-1), math.NaN(), nil},
		want: [4]string{"-2.25", "-inf", "nan", "NULL"}},
	{name: "d5", typ: dec(5, 2), duck: "DECIMAL(5,2)",
		vals: [4]record.Value{record.Decimal("123.45"), record.Decimal("-999.99"), record.Decimal("-0.5"), record.Decimal("NaN")},
		want: [4]string{"123.45", "-999.99", "-0.50", "NULL"}},
	{name: "d15", typ: dec(15, 0), duck: "DECIMAL(15,0)",
		vals: [4]record.Value{record.Decimal("999999999999999"), record.Decimal("-999999999999999"), record.Decimal("0"), nil},
		want: [4]string{"999999999999999", "-999999999999999", "0", "NULL"}},
	{name: "d15s", typ: dec(15, 10), duck: "DECIMAL(15,10)",
		vals: [4]record.Value{record.Decimal("12345.6789012345"), record.Decimal("-0.0000000001"), record.Decimal("7"), record.Decimal("1.50000000000000")},
		want: [4]string{"12345.6789012345", "-0.0000000001", "7.0000000000", "1.5000000000"}},
	{name: "d38", typ: dec(38, 10), duck: "DECIMAL(38,10)",
		vals: [4]record.Value{record.Decimal("1234567890123456789012345678.0123456789"), record.Decimal("-9999999999999999999999999999.9999999999"), record.Decimal("-1"), record.Decimal("Infinity")},
		want: [4]string{"1234567890123456789012345678.0123456789", "-9999999999999999999999999999.9999999999", "-1.0000000000", "NULL"}},
	{name: "d38z", typ: dec(38, 0), duck: "DECIMAL(38,0)",
		vals: [4]record.Value{record.Decimal("99999999999999999999999999999999999999"), record.Decimal("-99999999999999999999999999999999999999"), record.Decimal("-9223372036854775809"), nil},
		want: [4]string{"99999999999999999999999999999999999999", "-99999999999999999999999999999999999999", "-9223372036854775809", "NULL"}},
	{name: "d20", typ: dec(20, 5), duck: "DECIMAL(20,5)",
		vals: [4]record.Value{record.Decimal("123456789012345.12345"), record.Decimal("-123456789012345.1"), record.Decimal("-0.00001"), record.Decimal("-Infinity")},
		want: [4]string{"123456789012345.12345", "-123456789012345.10000", "-0.00001", "NULL"}},
	{name: "dtext", typ: record.Type{Kind: record.KindDecimalText, Scale: -1}, duck: "VARCHAR",
		vals: [4]record.Value{record.Decimal("1e-5000"), record.Decimal("NaN"), record.Decimal("-123456789012345678901234567890123456789012.5"), nil},
		want: [4]string{"1e-5000", "NaN", "-123456789012345678901234567890123456789012.5", "NULL"}},
	{name: "s", typ: typ(record.KindString), duck: "VARCHAR",
		vals: [4]record.Value{"hello", "", "ünïcødé 😀", nil},
		want: [4]string{"hello", "", "ünïcødé 😀", "NULL"}},
	{name: "by", typ: typ(record.KindBytes), duck: "BLOB", query: `hex("by")`,
		vals: [4]record.Value{[]byte{0, 1, 0xff}, []byte{}, []byte("abc"), nil},
		want: [4]string{"0001FF", "", "616263", "NULL"}},
	{name: "dt", typ: typ(record.KindDate), duck: "DATE",
		vals: [4]record.Value{record.Date(0), record.Date(-1), record.Date(20513), nil},
		want: [4]string{"1970-01-01", "1969-12-31", "2026-03-01", "NULL"}},
	{name: "tm", typ: typ(record.KindTime), duck: "TIME",
		vals: [4]record.Value{record.Time(45296789000), record.Time(0), record.Time(86400000000), record.Time(1)},
		want: [4]string{"12:34:56.789", "00:00:00", "24:00:00", "00:00:00.000001"}},
	{name: "ts", typ: typ(record.KindTimestamp), duck: "TIMESTAMP",
		vals: [4]record.Value{record.Timestamp(1709251199999999), record.TimestampInfinity, record.TimestampNegInfinity, record.Timestamp(-1)},
		want: [4]string{"2024-02-29 23:59:59.999999", "infinity", "-infinity", "1969-12-31 23:59:59.999999"}},
	{name: "tstz", typ: typ(record.KindTimestampTZ), duck: "TIMESTAMP WITH TIME ZONE",
		vals: [4]record.Value{record.Timestamp(1709251199999999), record.TimestampNegInfinity, record.TimestampInfinity, nil},
		want: [4]string{"2024-02-29 23:59:59.999999+00", "-infinity", "infinity", "NULL"}},
	{name: "u", typ: typ(record.KindUUID), duck: "UUID",
		vals: [4]record.Value{mustUUID("123e4567-e89b-12d3-a456-426614174000"), mustUUID("ffffffff-ffff-ffff-ffff-ffffffffffff"), record.UUID{}, nil},
		want: [4]string{"123e4567-e89b-12d3-a456-426614174000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "00000000-0000-0000-0000-000000000000", "NULL"}},
	{name: "j", typ: typ(record.KindJSON), duck: "JSON",
		vals: [4]record.Value{record.JSON(`{"a": [1, 2.5, null], "b": "x"}`), record.JSON(`null`), record.JSON(`"s"`), nil},
		want: [4]string{`{"a": [1, 2.5, null], "b": "x"}`, "null", `"s"`, "NULL"}},
	{name: "li", typ: list(typ(record.KindInt32)), duck: "INTEGER[]",
		vals: [4]record.Value{[]record.Value{int32(1), nil, int32(-3)}, []record.Value{}, []record.Value{nil}, nil},
		want: [4]string{"[1, NULL, -3]", "[]", "[NULL]", "NULL"}},
	{name: "ls", typ: list(typ(record.KindString)), duck: "VARCHAR[]",
		vals: [4]record.Value{[]record.Value{"a", "bc"}, []record.Value{nil, "z"}, []record.Value{}, nil},
		want: [4]string{"[a, bc]", "[NULL, z]", "[]", "NULL"}},
	{name: "ld", typ: list(dec(10, 2)), duck: "DECIMAL(10,2)[]",
		vals: [4]record.Value{[]record.Value{record.Decimal("1.5"), record.Decimal("-12345678.99")}, []record.Value{record.Decimal("NaN")}, nil, []record.Value{}},
		want: [4]string{"[1.50, -12345678.99]", "[NULL]", "NULL", "[]"}},
	{name: "ll", typ: list(list(typ(record.KindInt64))), duck: "BIGINT[][]",
		vals: [4]record.Value{
			[]record.Value{[]record.Value{int64(1), int64(2)}, nil, []record.Value{}},
			[]record.Value{[]record.Value{nil}},
			[]record.Value{},
			nil,
		},
		want: [4]string{"[[1, 2], NULL, []]", "[[NULL]]", "[]", "NULL"}},
	{name: "lu", typ: list(typ(record.KindUUID)), duck: "UUID[]",
		vals: [4]record.Value{[]record.Value{mustUUID("123e4567-e89b-12d3-a456-426614174000")}, nil, nil, nil},
		want: [4]string{"[123e4567-e89b-12d3-a456-426614174000]", "NULL", "NULL", "NULL"}},
}

func typesSchema() *record.Schema {
	cols := make([]record.Column, len(typeCases))
	for i, c := range typeCases {
		cols[i] = record.Column{Name: c.name, Type: c.typ, Nullable: true, Key: i == 0}
	}
	return record.NewSchema("public", "all_types", cols)
}

// TestEveryKindRoundTripsThroughDuckDB writes every logical kind, reads the file back
// with DuckDB and compares value by value and DuckDB's column types.
func TestEveryKindRoundTripsThroughDuckDB(t *testing.T) {
	dir := t.TempDir()
	d := openLocal(t, dir, "types")
	s := typesSchema()
	recs := make([]record.Record, 4)
	for r := range recs {
		after := make([]record.Value, len(typeCases))
		for c, tc := range typeCases {
			after[c] = tc.vals[r]
		}
		recs[r] = record.Record{Op: record.OpCreate, Schema: s, After: after, Pos: pos8(uint64(r + 1)), CommitTS: day1}
	}
	ctx := context.Background()
	if err := d.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	files := parquetFiles(t, dir)
	if want := "public/all_types/date=2026-03-04/0000000000000001.parquet"; len(files) != 1 || files[0] != want {
		t.Fatalf("files = %v, want [%s]", files, want)
	}

	db := lakedb.DuckDB(t)
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	tree := lakedb.ParquetTree(dir)

	gotTypes := map[string]string{}
	for _, row := range queryStrings(t, db, "DESCRIBE SELECT * FROM "+tree) {
		gotTypes[row[0]] = row[1]
	}
	wantTypes := map[string]string{
		"_op": "VARCHAR", "_pos": "VARCHAR", "_commit_ts": "TIMESTAMP WITH TIME ZONE",
		"_txid": "VARCHAR", "_unchanged": "VARCHAR[]", "date": "DATE",
	}
	for _, tc := range typeCases {
		wantTypes[tc.name] = tc.duck
	}
	for name, want := range wantTypes {
		if gotTypes[name] != want {
			t.Errorf("column %s: DuckDB type %q, want %q", name, gotTypes[name], want)
		}
	}
	if len(gotTypes) != len(wantTypes) {
		t.Errorf("DuckDB sees columns %v, want %v", gotTypes, wantTypes)
	}

	exprs := make([]string, len(typeCases))
	for i, tc := range typeCases {
		exprs[i] = tc.query
		if exprs[i] == "" {
			exprs[i] = `CAST("` + tc.name + `" AS VARCHAR)`
		}
	}
	got := queryStrings(t, db, "SELECT "+strings.Join(exprs, ", ")+" FROM "+tree+" ORDER BY _pos")
	if len(got) != 4 {
		t.Fatalf("read %d rows, want 4", len(got))
	}
	for r := range got {
		for c, tc := range typeCases {
			if got[r][c] != tc.want[r] {
				t.Errorf("row %d column %s (%s): DuckDB read %q, want %q", r, tc.name, tc.typ, got[r][c], tc.want[r])
			}
		}
	}

	// The file's own schema, as parquet-go reads it back: logical types, optionality.
	f, err := os.Open(filepath.Join(dir, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "all_types.schema.golden", pf.Schema().String()+"\n")
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestMetadataColumns checks _op, _pos, _commit_ts, _txid and _unchanged, deletes
// (before image, key only) and truncates (every column null).
func TestMetadataColumns(t *testing.T) {
	dir := t.TempDir()
	d := openLocal(t, dir, "meta")
	s := record.NewSchema("shop", "orders", []record.Column{
		{Name: "id", Type: typ(record.KindInt64), Key: true},
		{Name: "note", Type: typ(record.KindString), Nullable: false},
	})
	ctx := context.Background()
	recs := []record.Record{
		{Op: record.OpRead, Schema: s, After: []record.Value{int64(1), "snap"}, Pos: record.Position{0x00, 0x01}, CommitTS: day1},
		{Op: record.OpCreate, Schema: s, After: []record.Value{int64(2), "new"}, Pos: record.Position{0x00, 0x02}, CommitTS: day1, TxID: "731"},
		{Op: record.OpUpdate, Schema: s, Before: []record.Value{int64(2), "new"}, After: []record.Value{int64(2), nil},
			Unchanged: []string{"note"}, Pos: record.Position{0x00, 0x03}, CommitTS: day1, TxID: "732"},
		{Op: record.OpDelete, Schema: s, Before: []record.Value{int64(2), nil}, Pos: record.Position{0xab, 0xcd}, CommitTS: day1.Add(36 * 3600e9), TxID: "733"},
		{Op: record.OpTruncate, Schema: s, Pos: record.Position{0xff, 0x00}, CommitTS: day1.Add(36 * 3600e9)},
	}
	if err := d.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if rows, bytes := d.Buffered(); rows != 5 || bytes <= 0 {
		t.Errorf("Buffered() = %d rows, %d bytes; want 5 rows and some bytes", rows, bytes)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, bytes := d.Buffered(); rows != 0 || bytes != 0 {
		t.Errorf("Buffered() after Flush = %d, %d; want 0, 0", rows, bytes)
	}
	files := parquetFiles(t, dir)
	want := []string{"shop/orders/date=2026-03-04/0001.parquet", "shop/orders/date=2026-03-05/abcd.parquet"}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("files = %v, want %v", files, want)
	}
	db := lakedb.DuckDB(t)
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	got := queryStrings(t, db, `SELECT CAST(id AS VARCHAR), note, _op, _pos, CAST(_commit_ts AS VARCHAR), _txid,
		CAST(_unchanged AS VARCHAR), CAST(date AS VARCHAR) FROM `+lakedb.ParquetTree(dir)+` ORDER BY _pos`)
	wantRows := [][]string{
		{"1", "snap", "r", "0001", "2026-03-04 10:11:12.123456+00", "NULL", "NULL", "2026-03-04"},
		{"2", "new", "c", "0002", "2026-03-04 10:11:12.123456+00", "731", "NULL", "2026-03-04"},
		{"2", "NULL", "u", "0003", "2026-03-04 10:11:12.123456+00", "732", "[note]", "2026-03-04"},
		{"2", "NULL", "d", "abcd", "2026-03-05 22:11:12.123456+00", "733", "NULL", "2026-03-05"},
		{"NULL", "NULL", "t", "ff00", "2026-03-05 22:11:12.123456+00", "NULL", "NULL", "2026-03-05"},
	}
	if strings.Join(flatten(got), "|") != strings.Join(flatten(wantRows), "|") {
		t.Errorf("rows:\n got %v\nwant %v", got, wantRows)
	}
}

func flatten(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, strings.Join(r, ","))
	}
	return out
}

// TestBadValuesAreErrors: a value of the wrong Go type or a decimal that would have
// to be rounded fails Write with the table, position and column named.
func TestBadValuesAreErrors(t *testing.T) {
	s := record.NewSchema("public", "t", []record.Column{
		{Name: "n", Type: dec(5, 2)},
		{Name: "i", Type: typ(record.KindInt32)},
	})
	cases := []struct {
		row  []record.Value
		want string
	}{
		{[]record.Value{record.Decimal("1.005"), nil}, `column "n": decimal "1.005" has more than 2 fractional digits`},
		{[]record.Value{record.Decimal("1000"), nil}, `column "n": decimal "1000" does not fit decimal(5,2)`},
		{[]record.Value{nil, int64(1)}, `column "i": int32 value has Go type int64`},
		{[]record.Value{nil}, "row has 1 values, schema has 2 columns"},
	}
	for _, c := range cases {
		d := openLocal(t, t.TempDir(), "bad")
		err := d.Write(context.Background(), []record.Record{{Op: record.OpCreate, Schema: s, After: c.row, Pos: pos8(9), CommitTS: day1}})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "public.t at 0000000000000009") {
			t.Errorf("row %v: error %v, want one containing %q", c.row, err, c.want)
		}
		d.Close(context.Background())
	}
}

// TestDecimalOutsideParquetRangeKeepsText: Postgres 15's numeric(2,5) and
// numeric(5,-2) have no Parquet DECIMAL; their exact text is written as STRING.
func TestDecimalOutsideParquetRangeKeepsText(t *testing.T) {
	dir := t.TempDir()
	d := openLocal(t, dir, "oddscale")
	s := record.NewSchema("public", "odd", []record.Column{
		{Name: "small", Type: dec(2, 5)},
		{Name: "round", Type: dec(5, -2)},
		{Name: "l", Type: list(dec(2, 5))},
	})
	ctx := context.Background()
	err := d.Write(ctx, []record.Record{{Op: record.OpCreate, Schema: s, Pos: pos8(1), CommitTS: day1,
		After: []record.Value{record.Decimal("0.00012"), record.Decimal("12300"), []record.Value{record.Decimal("-0.00099")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db := lakedb.DuckDB(t)
	got := queryStrings(t, db, "SELECT small, round, CAST(l AS VARCHAR), typeof(small), typeof(l) FROM "+lakedb.ParquetTree(dir))
	want := "[[0.00012 12300 [-0.00099] VARCHAR VARCHAR[]]]"
	if fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

// TestWriteCopiesByteValues: rows are encoded after Write returns (on the file's
// encoder goroutine), so []byte and JSON values must be copied by Write: a caller
// may reuse its buffers once Write has returned.
func TestWriteCopiesByteValues(t *testing.T) {
	dir := t.TempDir()
	d := openLocal(t, dir, "bytes")
	s := record.NewSchema("public", "b", []record.Column{
		{Name: "id", Type: typ(record.KindInt64), Key: true},
		{Name: "raw", Type: typ(record.KindBytes)},
		{Name: "doc", Type: typ(record.KindJSON)},
	})
	ctx := context.Background()
	raw := []byte("abc")
	doc := record.JSON(`{"a":1}`)
	for i := 0; i < 3*batchRows; i++ {
		copy(raw, fmt.Sprintf("%03d", i%1000))
		copy(doc[5:6], strconv.Itoa(i%10))
		rec := record.Record{Op: record.OpCreate, Schema: s, After: []record.Value{int64(i), raw, doc}, Pos: pos8(uint64(i + 1)), CommitTS: day1}
		if err := d.Write(ctx, []record.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db := lakedb.DuckDB(t)
	got := queryStrings(t, db, `SELECT count(*) FROM `+lakedb.ParquetTree(dir)+`
		WHERE CAST(raw AS VARCHAR) <> lpad(CAST(id % 1000 AS VARCHAR), 3, '0') OR CAST(doc AS VARCHAR) <> '{"a":' || CAST(id % 10 AS VARCHAR) || '}'`)
	if got[0][0] != "0" {
		t.Fatalf("%s rows hold a value changed after Write", got[0][0])
	}
}
