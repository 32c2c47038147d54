package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// typeColumn is one column of the every-type table: how to render its value as
// comparable text on each side, and the type DuckDB must see in the Parquet files.
type typeColumn struct {
	name    string
	pgType  string
	pgExpr  string // text expression on the PostgreSQL side; %[1]s is the column
	duckExp string // text expression on the DuckDB side; %[1]s is the column
	cmp     string // "text" (exact), "float32", "float64", "json" (semantic)
	duck    string // DuckDB's type of the column (DESCRIBE)
}

// pgOut is a value's output-function text: a cast to text drops char(n) padding and
// adds the /32 of a host inet, while pgoutput and COPY send the output form.
const pgOut = "CASE WHEN %[1]s IS NOT NULL THEN format('%%s', %[1]s) END"

// Micros since 1970 for finite timestamps, the text 'infinity'/'-infinity' otherwise.
const (
	pgTSMicros   = "CASE WHEN isfinite(%[1]s) THEN (extract(epoch FROM %[1]s) * 1000000)::bigint::text ELSE %[1]s::text END"
	duckTSMicros = "CASE WHEN isfinite(%[1]s) THEN CAST(epoch_us(%[1]s) AS VARCHAR) ELSE CAST(%[1]s AS VARCHAR) END"
)

// Days since 1970 for finite dates, 'infinity'/'-infinity' otherwise.
const (
	pgDateDays   = "CASE WHEN isfinite(%[1]s) THEN (%[1]s - date '1970-01-01')::text ELSE %[1]s::text END"
	duckDateDays = "CASE WHEN isfinite(%[1]s) THEN CAST(%[1]s - DATE '1970-01-01' AS VARCHAR) ELSE CAST(%[1]s AS VARCHAR) END"
)

// pgArray renders an array as a JSON list of elem(e) per element, NULLs kept.
func pgArray(elem string) string {
	return "CASE WHEN %[1]s IS NOT NULL THEN coalesce((SELECT json_agg(CASE WHEN e IS NOT NULL THEN " + elem +
		" END ORDER BY i) FROM unnest(%[1]s) WITH ORDINALITY AS u(e, i)), '[]')::text END"
}

var everyType = []typeColumn{
	{"c_int2", "smallint", "%s::text", "CAST(%s AS VARCHAR)", "text", "SMALLINT"},
	{"c_int4", "integer", "%s::text", "CAST(%s AS VARCHAR)", "text", "INTEGER"},
	{"c_int8", "bigint", "%s::text", "CAST(%s AS VARCHAR)", "text", "BIGINT"},
	{"c_num102", "numeric(10,2)", "%s::text", "CAST(%s AS VARCHAR)", "text", "DECIMAL(10,2)"},
	{"c_num", "numeric", "%s::text", "%s", "text", "VARCHAR"},
	{"c_real", "real", "%s::text", "CAST(%s AS VARCHAR)", "float32", "FLOAT"},
	{"c_double", "double precision", "%s::text", "CAST(%s AS VARCHAR)", "float64", "DOUBLE"},
	{"c_bool", "boolean", "%s::text", "CAST(%s AS VARCHAR)", "text", "BOOLEAN"},
	{"c_text", "text", "%s", "%s", "text", "VARCHAR"},
	{"c_varchar", "varchar(20)", "%s::text", "%s", "text", "VARCHAR"},
	{"c_char", "char(5)", pgOut, "%s", "text", "VARCHAR"},
	{"c_bytea", "bytea", "encode(%s, 'hex')", "lower(hex(%s))", "text", "BLOB"},
	{"c_date", "date", "(%s - date '1970-01-01')::text", "CAST(%s - DATE '1970-01-01' AS VARCHAR)", "text", "DATE"},
	{"c_time", "time", "(extract(epoch FROM %s) * 1000000)::bigint::text", "CAST(epoch_us(%s) AS VARCHAR)", "text", "TIME"},
	{"c_timetz", "timetz", "%s::text", "%s", "text", "VARCHAR"},
	{"c_ts", "timestamp", pgTSMicros, duckTSMicros, "text", "TIMESTAMP"},
	{"c_tstz", "timestamptz", pgTSMicros, duckTSMicros, "text", "TIMESTAMP WITH TIME ZONE"},
	{"c_interval", "interval", "%s::text", "%s", "text", "VARCHAR"},
	{"c_uuid", "uuid", "%s::text", "CAST(%s AS VARCHAR)", "text", "UUID"},
	{"c_json", "json", "%s::text", "CAST(%s AS VARCHAR)", "json", "JSON"},
	{"c_jsonb", "jsonb", "%s::text", "CAST(%s AS VARCHAR)", "json", "JSON"},
	{"c_enum", "mood", "%s::text", "%s", "text", "VARCHAR"},
	{"c_int_arr", "int[]", "array_to_json(%s)::text", "CAST(to_json(%s) AS VARCHAR)", "json", "INTEGER[]"},
	{"c_text_arr", "text[]", "array_to_json(%s)::text", "CAST(to_json(%s) AS VARCHAR)", "json", "VARCHAR[]"},
	{"c_inet", "inet", pgOut, "%s", "text", "VARCHAR"},
	{"c_cidr", "cidr", "%s::text", "%s", "text", "VARCHAR"},
	{"c_bit", "bit(4)", "%s::text", "%s", "text", "VARCHAR"},
	{"c_varbit", "varbit", "%s::text", "%s", "text", "VARCHAR"},
	{"c_num38", "numeric(38,0)", "%s::text", "CAST(%s AS VARCHAR)", "text", "DECIMAL(38,0)"},
	{"c_num3810", "numeric(38,10)", "%s::text", "CAST(%s AS VARCHAR)", "text", "DECIMAL(38,10)"},
	{"c_num5010", "numeric(50,10)", "%s::text", "%s", "text", "VARCHAR"},
	{"c_num_neg", "numeric(5,-2)", "%s::text", "%s", "text", "VARCHAR"},
	{"c_date_inf", "date", pgDateDays, duckDateDays, "text", "DATE"},
	{"c_num_arr", "numeric(10,2)[]", "array_to_json(%s)::text", "CAST(to_json(%s) AS VARCHAR)", "json", "DECIMAL(10,2)[]"},
	{"c_tstz_arr", "timestamptz[]", pgArray("CASE WHEN isfinite(e) THEN (extract(epoch FROM e) * 1000000)::bigint::text ELSE e::text END"),
		"CAST(to_json(list_transform(%s, x -> CASE WHEN isfinite(x) THEN CAST(epoch_us(x) AS VARCHAR) ELSE CAST(x AS VARCHAR) END)) AS VARCHAR)", "json", "TIMESTAMP WITH TIME ZONE[]"},
	{"c_bytea_arr", "bytea[]", pgArray("encode(e, 'hex')"), "CAST(to_json(list_transform(%s, x -> lower(hex(x)))) AS VARCHAR)", "json", "BLOB[]"},
	{"c_uuid_arr", "uuid[]", "array_to_json(%s)::text", "CAST(to_json(%s) AS VARCHAR)", "json", "UUID[]"},
	{"c_bool_arr", "boolean[]", "array_to_json(%s)::text", "CAST(to_json(%s) AS VARCHAR)", "json", "BOOLEAN[]"},
	{"c_date_arr", "date[]", "array_to_json(%s)::text", "CAST(to_json(%s) AS VARCHAR)", "json", "DATE[]"},
	{"c_enum_arr", "mood[]", "array_to_json(%s)::text", "CAST(to_json(%s) AS VARCHAR)", "json", "VARCHAR[]"},
	// point has no mapping: it must arrive as the server's text form.
	{"c_point", "point", "%s::text", "%s", "text", "VARCHAR"},
}

// everyTypeRows are the rows of the table, one VALUES tuple each, in column order.
// They cover the extremes and special values of every type.
var everyTypeRows = []string{
	// Ordinary values.
	`(1, 42, 123456, 1234567890123, 12345.67, 3.14159, 1.5, 2.718281828459045, true,
	  'hello', 'varchar', 'ab', '\xdeadbeef', '2024-02-29', '12:34:56.789123', '12:34:56.5+05:30',
	  '2024-02-29 12:34:56.123456', '2024-02-29 23:59:59.123456-05:00', '1 year 2 mons 3 days 04:05:06.789',
	  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.50, "x"], "b": {"c": null}}', '{"k": "v", "n": 12345678901234567890}',
	  'happy', '{1,2,3}', '{a,b,c}', '192.168.1.5', '10.0.0.0/8', '1010', '101', 99999999999999999999999999999999999999, 1234567890123456789012345678.0123456789, 1.5, 12345,
	  'infinity', '{1.50,NULL,-99999999.99}', '{"2024-01-01 00:00:00+00",NULL,"1969-12-31 23:59:59.999999+00"}',
	  '{"\\x00ff",NULL,"\\x"}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}', '{t,f,NULL}', '{2024-02-29,NULL,1970-01-01}',
	  '{sad,"very happy",NULL}', '(1.5,-2)')`,
	// Minimums, negative infinities, the awkward strings.
	`(2, -32768, -2147483648, -9223372036854775808, -99999999.99,
	  12345678901234567890123456789012345678901234567890.123456789, 'NaN', 'Infinity', false,
	  E'quote '' dq " bs \\ nl \n tab \t é ✓ 𝄞', '', 'a', '\x00ff5c0a22', '0001-01-01', '00:00:00', '00:00:00-12',
	  '-infinity', 'infinity', '-1 years -2 mons +3 days -04:05:06.789',
	  '00000000-0000-0000-0000-000000000000', ' [ 1 , "two" , {"three": 3.0} ] ', '[]',
	  'very happy', '{}', '{"",NULL,"NULL","a\"b","c,d","{e}"," sp ","back\\slash"}', '::1', '2001:db8::/32', '0000', '', -99999999999999999999999999999999999999, -0.0000000001, 'NaN', -9999949,
	  '4713-01-01 BC', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '(0,0)')`,
	// Maximums, the other infinities.
	`(3, 32767, 2147483647, 9223372036854775807, 99999999.99, 'NaN', '-Infinity', 'NaN', true,
	  repeat('x', 5000), repeat('y', 20), 'abcde', '\x', '9999-12-31', '24:00:00', '23:59:59.999999+14',
	  '9999-12-31 23:59:59.999999', '-infinity', 'P1Y2M3DT4H5M6.000001S',
	  'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', '{"nested": {"deep": [[], {}, [null]]}}',
	  'sad', '{-2147483648,NULL,2147483647}', '{NULL}', '255.255.255.255/32', '0.0.0.0/0', '1111', '1010101010101', 0, -9999999999999999999999999999.9999999999, 1234567890123456789012345678901234567890.0123456789, 0,
	  '2000-01-01', '{0.01}', '{infinity,-infinity}', '{"\\x"}', '{NULL}', '{NULL}', '{9999-12-31}', '{ok}',
	  '(-1.5e10,2.25e-5)')`,
	// Everything NULL but the key.
	`(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	// Values around 1970 and near the limits of float precision.
	`(5, 0, -1, 0, 0.01, -0.000000000000000000000000000000000000000001, 3.4028235e38, 2.2250738585072014e-308, false,
	  ' padded ', 'trailing  ', ' ', '\x0102', '1969-12-31', '00:00:00.000001', '00:00:00+00',
	  '1969-12-31 23:59:59.999999', '1970-01-01 00:00:00+00', '0',
	  '123e4567-e89b-12d3-a456-426614174000', '"just a string"', '3.14159265358979323846264338327950288',
	  'ok', '{0}', '{"with space","with,comma"}', '10.1.2.3/16', '192.168.0.0/16', '0101', '0', 1, 0.0000000001, -0.0000000001, 50,
	  '1970-01-01', '{NULL}', '{"2024-02-29 23:59:59.123456-05:00"}', '{"\\x5c22"}',
	  '{00000000-0000-0000-0000-000000000000,ffffffff-ffff-ffff-ffff-ffffffffffff}', '{f}', '{0001-01-01}', '{happy,happy}', '(3,4)')`,
}

// TestEveryTypeSurvivesTheTrip writes a table with every type of the value mapping
// (docs/design.md, "Values") through the snapshot and through streaming to an s3://
// lake, and compares each value with what PostgreSQL holds, and each column's type
// with the mapping in destinations/parquet/README.md.
func TestEveryTypeSurvivesTheTrip(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_types")
	var cols []string
	for _, c := range everyType {
		cols = append(cols, c.name+" "+c.pgType)
	}
	mustExec(t, conn, `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'very happy')`)
	mustExec(t, conn, "CREATE TABLE public.every_type (id int PRIMARY KEY, "+strings.Join(cols, ", ")+")")
	mustExec(t, conn, "INSERT INTO public.every_type VALUES "+strings.Join(everyTypeRows, ",\n"))

	p := newPipe(t, "every_type", dsn, true, "public.every_type")
	p.writeConfig(t)
	first := p.sync(t)
	if !strings.Contains(first.stderr, "c_point") {
		t.Errorf("sync did not warn about the unmapped column c_point (type point); stderr:\n%s", tail(first.stderr, 30))
	}

	// The same values again, through streaming, plus an update of every column.
	n := len(everyTypeRows)
	mustExec(t, conn, fmt.Sprintf("INSERT INTO public.every_type SELECT id + 100, %s FROM public.every_type", colList()))
	var set []string
	for _, c := range everyType {
		set = append(set, fmt.Sprintf("%[1]s = (SELECT %[1]s FROM public.every_type WHERE id = 2)", c.name))
	}
	mustExec(t, conn, "UPDATE public.every_type SET "+strings.Join(set, ", ")+" WHERE id = 1")
	mustExec(t, conn, "UPDATE public.every_type SET c_text = NULL, c_int_arr = '{7,NULL}' WHERE id = 105")
	p.sync(t)

	db := lakedb.DuckDB(t)
	dir := lakeTable(p.localLake(t), "public", "every_type")
	files := parquetFiles(t, dir)
	if len(files) < 2 {
		t.Fatalf("want at least two files (the snapshot's and the stream's), have %v", files)
	}

	// Types, in the tree and in each file.
	wantTypes := map[string]string{"id": "INTEGER", "_op": "VARCHAR", "_pos": "VARCHAR",
		"_commit_ts": "TIMESTAMP WITH TIME ZONE", "_txid": "VARCHAR", "_unchanged": "VARCHAR[]"}
	for _, c := range everyType {
		wantTypes[c.name] = c.duck
	}
	for _, f := range append([]string{""}, files...) {
		src := lakedb.ParquetTree(dir)
		if f != "" {
			src = "read_parquet('" + strings.ReplaceAll(f, "'", "''") + "')"
		}
		got := map[string]string{}
		for _, r := range queryRows(t, db, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "+src+")") {
			got[r.val("column_name")] = r.val("column_type")
		}
		for name, want := range wantTypes {
			if got[name] != want {
				t.Errorf("%s: column %s has DuckDB type %q, want %q", src, name, got[name], want)
			}
		}
	}

	// Values: the lake's last row of each key against the table.
	lakeSel := []string{"CAST(id AS VARCHAR) AS id"}
	pgSel := []string{"id::text AS id"}
	for _, c := range everyType {
		lakeSel = append(lakeSel, fmt.Sprintf(c.duckExp, c.name)+" AS "+c.name)
		pgSel = append(pgSel, fmt.Sprintf(c.pgExpr, c.name)+" AS "+c.name)
	}
	rows := readTable(t, db, dir, lakeSel...)
	checkPositions(t, rows)
	ops := map[string]string{}
	for _, r := range rows {
		ops[r.val("id")] += r.val("_op")
		if op := r.val("_op"); op != "r" && r.isNull("_txid") {
			t.Errorf("id %s: %s row without _txid", r.val("id"), op)
		}
		if !r.isNull("_unchanged") && r.val("_unchanged") != "[]" {
			t.Errorf("id %s: _unchanged %s, but no column of this table is TOASTed", r.val("id"), r.val("_unchanged"))
		}
	}
	for i := 1; i <= n; i++ {
		want := "r"
		if i == 1 {
			want = "ru"
		}
		if got := ops[strconv.Itoa(i)]; got != want {
			t.Errorf("id %d: lake ops %q, want %q", i, got, want)
		}
		want = "c"
		if i == 5 {
			want = "cu"
		}
		if got := ops[strconv.Itoa(100+i)]; got != want {
			t.Errorf("id %d: lake ops %q, want %q", 100+i, got, want)
		}
	}
	lake := rebuild(rows, "id")
	source := pgRows(t, conn, "SELECT "+strings.Join(pgSel, ", ")+" FROM public.every_type ORDER BY id")
	if len(source) != 2*n {
		t.Fatalf("source has %d rows, want %d", len(source), 2*n)
	}
	for _, want := range source {
		id := want.val("id")
		got, ok := lake[id]
		if !ok {
			t.Errorf("id %s: not in the lake", id)
			continue
		}
		for _, c := range everyType {
			if err := sameValue(c.cmp, got[c.name], want[c.name]); err != nil {
				t.Errorf("id %s (%s row) column %s (%s): %v", id, got.val("_op"), c.name, c.pgType, err)
			}
		}
	}
}

// colList is the every-type column names, comma-separated.
func colList() string {
	names := make([]string, len(everyType))
	for i, c := range everyType {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// sameValue compares a lake value with the source's, both rendered as text.
func sameValue(cmp string, got, want *string) error {
	show := func(v *string) string {
		if v == nil {
			return "NULL"
		}
		if len(*v) > 80 {
			return fmt.Sprintf("%q... (%d bytes)", (*v)[:80], len(*v))
		}
		return fmt.Sprintf("%q", *v)
	}
	if got == nil || want == nil {
		if got != want {
			return fmt.Errorf("lake has %s, source has %s", show(got), show(want))
		}
		return nil
	}
	switch cmp {
	case "text":
		if *got == *want {
			return nil
		}
	case "float32", "float64":
		bits := 64
		if cmp == "float32" {
			bits = 32
		}
		g, gerr := strconv.ParseFloat(*got, bits)
		w, werr := strconv.ParseFloat(*want, bits)
		if gerr != nil || werr != nil {
			return fmt.Errorf("lake has %s, source has %s (parse: %v, %v)", show(got), show(want), gerr, werr)
		}
		if g == w || (math.IsNaN(g) && math.IsNaN(w)) {
			return nil
		}
	case "json":
		g, gerr := decodeJSON(*got)
		w, werr := decodeJSON(*want)
		if gerr != nil || werr != nil {
			return fmt.Errorf("lake has %s, source has %s (parse: %v, %v)", show(got), show(want), gerr, werr)
		}
		if reflect.DeepEqual(g, w) {
			return nil
		}
	default:
		return fmt.Errorf("unknown comparison %q", cmp)
	}
	return fmt.Errorf("lake has %s, source has %s", show(got), show(want))
}

// decodeJSON decodes keeping numbers as their text, so that precision is compared too
// (normalised through big-number-safe parsing: 2.50 and 2.5 are the same number).
func decodeJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return normaliseNumbers(v), nil
}

func normaliseNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if r, ok := new(big.Rat).SetString(string(x)); ok {
			return r.RatString()
		}
		return string(x)
	case []any:
		for i := range x {
			x[i] = normaliseNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normaliseNumbers(x[k])
		}
	}
	return v
}

// TestDateInfinitySurvivesTheTrip: date 'infinity' and '-infinity', alone and in
// arrays, read back from the lake as DuckDB's infinities (docs/design.md, "Values": special
// values keep their meaning), through the snapshot and through streaming.
func TestDateInfinitySurvivesTheTrip(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_dateinf")
	mustExec(t, conn, `CREATE TABLE public.days (id int PRIMARY KEY, d date, da date[]);
INSERT INTO public.days VALUES (1, 'infinity', '{infinity,-infinity,NULL}'), (2, '-infinity', NULL), (3, '2024-01-01', '{}')`)
	p := newPipe(t, "date_infinity", dsn, false, "public.days")
	p.writeConfig(t)
	p.sync(t)
	mustExec(t, conn, "INSERT INTO public.days SELECT id + 10, d, da FROM public.days")
	p.sync(t)

	db := lakedb.DuckDB(t)
	rows := readTable(t, db, lakeTable(p.lakeDir, "public", "days"), "CAST(id AS VARCHAR) AS id",
		fmt.Sprintf(duckDateDays, "d")+" AS d",
		"CAST(to_json(list_transform(da, x -> "+fmt.Sprintf(duckDateDays, "x")+")) AS VARCHAR) AS da")
	checkPositions(t, rows)
	lake := rebuild(rows, "id")
	source := pgRows(t, conn, "SELECT id::text AS id, "+fmt.Sprintf(pgDateDays, "d")+" AS d, "+
		strings.ReplaceAll(pgArray(fmt.Sprintf(pgDateDays, "e")), "%[1]s", "da")+" AS da FROM public.days")
	if len(source) != 6 {
		t.Fatalf("source has %d rows, want 6", len(source))
	}
	for _, want := range source {
		got, ok := lake[want.val("id")]
		if !ok {
			t.Errorf("id %s: not in the lake", want.val("id"))
			continue
		}
		if err := sameValue("text", got["d"], want["d"]); err != nil {
			t.Errorf("id %s (%s row) column d: %v", want.val("id"), got.val("_op"), err)
		}
		if err := sameValue("json", got["da"], want["da"]); err != nil {
			t.Errorf("id %s (%s row) column da: %v", want.val("id"), got.val("_op"), err)
		}
	}
}
