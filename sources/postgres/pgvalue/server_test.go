package pgvalue

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/record"
)

// sharedPG is the server the tests against a real PostgreSQL share, started by the
// first of them (none under -short, so the decoders' unit tests and fuzz seeds run
// without it).
var sharedPG = testenv.SharedPostgres(testenv.PostgresOptions{})

func TestMain(m *testing.M) {
	code := m.Run()
	if err := sharedPG.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgvalue:", err)
	}
	os.Exit(code)
}

// sessionSettings are the settings the postgres source runs its sessions with.
var sessionSettings = map[string]string{
	"DateStyle":          "ISO",
	"TimeZone":           "UTC",
	"IntervalStyle":      "iso_8601",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"lc_monetary":        "C",
}

// connectText opens a session that returns every result in text format.
func connectText(ctx context.Context, t *testing.T, timeZone string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(sharedPG.Get(t).DSN)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range sessionSettings {
		cfg.RuntimeParams[k] = v
	}
	cfg.RuntimeParams["TimeZone"] = timeZone
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// loadTypeInfo builds a TypeInfo from the catalog the way the postgres source does.
func loadTypeInfo(ctx context.Context, conn *pgx.Conn, oid uint32, typmod int32) (TypeInfo, error) {
	var (
		ti                TypeInfo
		typtype, category string
		elem, baseType    uint32
		baseTypmod        int32
	)
	err := conn.QueryRow(ctx, `SELECT format_type(oid, $2::int4), typtype::text, typcategory::text,
			typelem, typbasetype, typtypmod FROM pg_type WHERE oid = $1::oid`, oid, typmod).
		Scan(&ti.Name, &typtype, &category, &elem, &baseType, &baseTypmod)
	if err != nil {
		return ti, fmt.Errorf("load type %d: %w", oid, err)
	}
	ti.OID, ti.Typmod, ti.Type, ti.Category = oid, typmod, typtype[0], category[0]
	if ti.Category == 'A' && elem != 0 {
		e, err := loadTypeInfo(ctx, conn, elem, typmod)
		if err != nil {
			return ti, err
		}
		ti.Elem = &e
	}
	if ti.Type == 'd' {
		b, err := loadTypeInfo(ctx, conn, baseType, baseTypmod)
		if err != nil {
			return ti, err
		}
		ti.Base = &b
	}
	return ti, nil
}

type serverCase struct {
	expr    string // an SQL expression; its type is the column type under test
	want    record.Value
	unknown bool // the type has no mapping; want is the server's text
	err     string
}

func L(v ...record.Value) []record.Value {
	if v == nil {
		return []record.Value{}
	}
	return v
}

var (
	uuidA   = record.UUID{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	nastyS  = "tab\there\nnew\\back\"quote'apos,comma{brace}ünï"
	nastySQ = `E'tab\there\nnew\\back"quote''apos,comma{brace}ünï'`
)

func serverCases() []serverCase {
	return []serverCase{
		{expr: "(-32768)::int2", want: int16(math.MinInt16)},
		{expr: "32767::int2", want: int16(math.MaxInt16)},
		{expr: "(-2147483648)::int4", want: int32(math.MinInt32)},
		{expr: "2147483647::int4", want: int32(math.MaxInt32)},
		{expr: "'-9223372036854775808'::int8", want: int64(math.MinInt64)},
		{expr: "'9223372036854775807'::int8", want: int64(math.MaxInt64)},
		{expr: "4294967295::oid", want: int64(4294967295)},
		{expr: "'12.3'::numeric(10,2)", want: record.Decimal("12.30")},
		{expr: "'-0.05'::numeric(10,2)", want: record.Decimal("-0.05")},
		{expr: "'0'::numeric(10,2)", want: record.Decimal("0.00")},
		{expr: "'NaN'::numeric(10,2)", want: record.Decimal("NaN")},
		{expr: "'99999999999999999999999999999999999999'::numeric(38,0)", want: record.Decimal("99999999999999999999999999999999999999")},
		{expr: "'0.12345678901234567890123456789012345678'::numeric(38,38)", want: record.Decimal("0.12345678901234567890123456789012345678")},
		{expr: "12345::numeric(5,-2)", want: record.Decimal("12300")},
		{expr: "'1e-20'::numeric", want: record.Decimal("0.00000000000000000001")},
		{expr: "'-1.50'::numeric", want: record.Decimal("-1.50")},
		{expr: "'1e100'::numeric", want: record.Decimal("1" + strings.Repeat("0", 100))},
		{expr: "'NaN'::numeric", want: record.Decimal("NaN")},
		{expr: "'Infinity'::numeric", want: record.Decimal("Infinity")},
		{expr: "'-Infinity'::numeric", want: record.Decimal("-Infinity")},
		{expr: "'1.1'::float4", want: float32(1.1)},
		{expr: "'3.4028235e38'::float4", want: float32(math.MaxFloat32)},
		{expr: "'1e-45'::float4", want: float32(math.SmallestNonzeroFloat32)},
		{expr: "'NaN'::float4", want: float32(math.NaN())},
		{expr: "'-Infinity'::float4", want: float32(math.Inf(-1))},
		{expr: "'0.1'::float8", want: 0.1},
		{expr: "'1.7976931348623157e308'::float8", want: math.MaxFloat64},
		{expr: "'5e-324'::float8", want: 5e-324},
		{expr: "'-0'::float8", want: math.Copysign(0, -1)},
		{expr: "'Infinity'::float8", want: math.Inf(1)},
		{expr: "'NaN'::float8", want: math.NaN()},
		{expr: "true", want: true},
		{expr: "false", want: false},
		{expr: "''::text", want: ""},
		{expr: nastySQ + "::text", want: nastyS},
		{expr: "'ab'::varchar(5)", want: "ab"},
		{expr: "'ab'::char(5)", want: "ab   "},
		{expr: "'pg_class'::name", want: "pg_class"},
		{expr: `'\x00ff10'::bytea`, want: []byte{0, 0xff, 0x10}},
		{expr: `E'\\000a\\\\b'::bytea`, want: []byte{0, 'a', '\\', 'b'}},
		{expr: `''::bytea`, want: []byte{}},
		{expr: "'2024-02-29'::date", want: dateOf(2024, 2, 29)},
		{expr: "'1969-12-31'::date", want: record.Date(-1)},
		{expr: "'0044-03-15 BC'::date", want: dateOf(-43, 3, 15)},
		{expr: "'4714-11-24 BC'::date", want: dateOf(-4713, 11, 24)},
		{expr: "'5874897-12-31'::date", want: dateOf(5874897, 12, 31)},
		{expr: "'infinity'::date", want: DateInfinity},
		{expr: "'-infinity'::date", want: DateNegInfinity},
		{expr: "'24:00:00'::time", want: record.Time(86_400_000_000)},
		{expr: "'23:59:59.999999'::time", want: record.Time(86_400_000_000 - 1)},
		{expr: "'12:34:56.789'::time", want: record.Time(45_296_789_000)},
		{expr: "'00:00'::time", want: record.Time(0)},
		{expr: "'12:34:56.789+05:30'::timetz", want: "12:34:56.789+05:30"},
		{expr: "'12:34:56-08'::timetz", want: "12:34:56-08"},
		{expr: "'2024-01-02 03:04:05.123456'::timestamp", want: tsOf(2024, 1, 2, 3, 4, 5, 123456, 0)},
		{expr: "'2024-01-02 03:04:05.1'::timestamp", want: tsOf(2024, 1, 2, 3, 4, 5, 100000, 0)},
		{expr: "'1960-06-30 23:59:59.999999'::timestamp", want: tsOf(1960, 6, 30, 23, 59, 59, 999999, 0)},
		{expr: "'0044-03-15 12:00:00 BC'::timestamp", want: tsOf(-43, 3, 15, 12, 0, 0, 0, 0)},
		{expr: "'4714-11-24 00:00:00 BC'::timestamp", want: tsOf(-4713, 11, 24, 0, 0, 0, 0, 0)},
		{expr: "'294246-12-31 23:59:59.999999'::timestamp", want: tsOf(294246, 12, 31, 23, 59, 59, 999999, 0)},
		{expr: "'294276-12-31 23:59:59.999999'::timestamp", err: "out of range"},
		{expr: "'infinity'::timestamp", want: record.TimestampInfinity},
		{expr: "'-infinity'::timestamp", want: record.TimestampNegInfinity},
		{expr: "'2024-01-02 03:04:05.123456+00'::timestamptz", want: tsOf(2024, 1, 2, 3, 4, 5, 123456, 0)},
		{expr: "'2024-01-02 03:04:05+05:30'::timestamptz", want: tsOf(2024, 1, 2, 3, 4, 5, 0, 19800)},
		{expr: "'0044-03-15 12:00:00+00 BC'::timestamptz", want: tsOf(-43, 3, 15, 12, 0, 0, 0, 0)},
		{expr: "'infinity'::timestamptz", want: record.TimestampInfinity},
		{expr: "'-infinity'::timestamptz", want: record.TimestampNegInfinity},
		{expr: "'1 year 2 months 3 days 04:05:06.789'::interval", want: "P1Y2M3DT4H5M6.789S"},
		{expr: "'-1 year -2 days +03:00'::interval", want: "P-1Y-2DT3H"},
		{expr: "'0'::interval", want: "PT0S"},
		{expr: "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", want: uuidA},
		{expr: `'{"b":1,  "a":[1,2.50]}'::json`, want: record.JSON(`{"b":1,  "a":[1,2.50]}`)},
		{expr: `'{"b":1,  "a":[1,2.50], "t":"x\ty"}'::jsonb`, want: record.JSON(`{"a": [1, 2.50], "b": 1, "t": "x\ty"}`)},
		{expr: "'happy'::pgvalue_mood", want: "happy"},
		{expr: "'192.168.0.1/24'::inet", want: "192.168.0.1/24"},
		{expr: "'10.0.0.0/8'::cidr", want: "10.0.0.0/8"},
		{expr: "'08:00:2b:01:02:03'::macaddr", want: "08:00:2b:01:02:03"},
		{expr: "B'0101'::bit(4)", want: "0101"},
		{expr: "B'101'::varbit", want: "101"},
		{expr: "12.34::money", want: "$12.34"},
		{expr: "'<a>b &amp; c</a>'::xml", want: "<a>b &amp; c</a>"},
		{expr: "12.345::pgvalue_amount", want: record.Decimal("12.345")},
		{expr: "'{}'::int4[]", want: L()},
		{expr: "'{1,NULL,3}'::int4[]", want: L(int32(1), nil, int32(3))},
		{expr: "'[0:2]={1,2,3}'::int4[]", want: L(int32(1), int32(2), int32(3))},
		{expr: "'{{1,2},{3,4}}'::int4[]", err: "the value has 2 dimensions, the column is declared with 1"},
		{expr: "ARRAY['a,b', '{c}', 'd\"e', E'f\\\\g', '', 'NULL', NULL, ' sp ', " + nastySQ + "]",
			want: L("a,b", "{c}", `d"e`, `f\g`, "", "NULL", nil, " sp ", nastyS)},
		{expr: `ARRAY['\x0102'::bytea, NULL, '']`, want: L([]byte{1, 2}, nil, []byte{})},
		{expr: "'{1.5,NaN,-0.01}'::numeric(10,2)[]", want: L(record.Decimal("1.50"), record.Decimal("NaN"), record.Decimal("-0.01"))},
		{expr: "ARRAY['2024-01-02 03:04:05+00'::timestamptz, 'infinity', '0044-03-15 12:00:00+00 BC']",
			want: L(tsOf(2024, 1, 2, 3, 4, 5, 0, 0), record.TimestampInfinity, tsOf(-43, 3, 15, 12, 0, 0, 0, 0))},
		{expr: "ARRAY['2024-01-02'::date, '0044-03-15 BC']", want: L(dateOf(2024, 1, 2), dateOf(-43, 3, 15))},
		{expr: `ARRAY['{"a": "x,}"}'::jsonb, '[1, 2]']`, want: L(record.JSON(`{"a": "x,}"}`), record.JSON(`[1, 2]`))},
		{expr: "ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]", want: L(uuidA)},
		{expr: "ARRAY['happy'::pgvalue_mood, NULL]", want: L("happy", nil)},
		{expr: "ARRAY['NaN'::float8, 'Infinity', 1.5]", want: L(math.NaN(), math.Inf(1), 1.5)},
		{expr: "ARRAY[true, false, NULL]", want: L(true, false, nil)},
		{expr: "ARRAY['1 day'::interval, '-1 second']", want: L("P1D", "PT-1S")},
		{expr: "ARRAY[12.345::pgvalue_amount]", want: L(record.Decimal("12.345"))},
		{expr: "'(1,2)'::point", want: "(1,2)", unknown: true},
		{expr: "'[1,5)'::int4range", want: "[1,5)", unknown: true},
		{expr: "'16/B374D848'::pg_lsn", want: "16/B374D848", unknown: true},
		{expr: "'b a'::tsvector", want: "'a' 'b'", unknown: true},
		{expr: "ARRAY['(1,2)'::point]", want: `{"(1,2)"}`, unknown: true},
		{expr: "ROW(1, 'x')::pgvalue_pair", want: "(1,x)", unknown: true},
	}
}

func setupServerTypes(ctx context.Context, t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for _, sql := range []string{
		"DROP TYPE IF EXISTS pgvalue_mood, pgvalue_pair CASCADE",
		"DROP DOMAIN IF EXISTS pgvalue_amount CASCADE",
		"CREATE TYPE pgvalue_mood AS ENUM ('sad', 'happy')",
		"CREATE TYPE pgvalue_pair AS (a int, b text)",
		"CREATE DOMAIN pgvalue_amount AS numeric(12,3) CHECK (VALUE > 0)",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// TestDecodeMatchesServerOutput asks a real server for each value in text format, both
// as a query result (what pgoutput sends) and through COPY TO STDOUT, and decodes it.
func TestDecodeMatchesServerOutput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := connectText(ctx, t, "UTC")
	setupServerTypes(ctx, t, conn)
	for _, tc := range serverCases() {
		t.Run(tc.expr, func(t *testing.T) {
			rows, err := conn.Query(ctx, "SELECT "+tc.expr+", pg_typeof("+tc.expr+")::oid")
			if err != nil {
				t.Fatal(err)
			}
			if !rows.Next() {
				t.Fatalf("no row: %v", rows.Err())
			}
			fd := rows.FieldDescriptions()[0]
			text := bytes.Clone(rows.RawValues()[0])
			var oid uint32
			if err := rows.Scan(nil, &oid); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			// RowDescription reports a domain as its base type; the typmod belongs to it.
			typmod := fd.TypeModifier
			if oid != fd.DataTypeOID {
				typmod = -1
			}
			ti, err := loadTypeInfo(ctx, conn, oid, typmod)
			if err != nil {
				t.Fatal(err)
			}
			c, known := NewCodec(ti)
			if known == tc.unknown {
				t.Errorf("%s: known = %v", ti.Name, known)
			}
			check := func(how string, text []byte) {
				t.Helper()
				got, err := c.Decode(text)
				if tc.err != "" {
					if err == nil || !strings.Contains(err.Error(), tc.err) {
						t.Errorf("%s: Decode(%q) = %#v, %v; want error %q", how, text, got, err, tc.err)
					}
					return
				}
				if err != nil {
					t.Errorf("%s: %v", how, err)
					return
				}
				if !equalValue(got, tc.want) {
					t.Errorf("%s: %s: Decode(%q) = %#v, want %#v", how, ti.Name, text, got, tc.want)
				}
			}
			check("query", text)

			var buf bytes.Buffer
			if _, err := conn.PgConn().CopyTo(ctx, &buf, "COPY (SELECT "+tc.expr+") TO STDOUT"); err != nil {
				t.Fatal(err)
			}
			fields := SplitCopyLine(buf.Bytes(), nil)
			if len(fields) != 1 {
				t.Fatalf("COPY line %q split into %d fields", buf.Bytes(), len(fields))
			}
			raw, null := UnescapeCopyText(fields[0])
			if null {
				t.Fatalf("COPY field %q read as NULL", fields[0])
			}
			if !bytes.Equal(raw, text) {
				t.Errorf("COPY field %q unescapes to %q, query gave %q", fields[0], raw, text)
			}
			check("copy", raw)
		})
	}
}

// TestCopyLinesSplitAndUnescape copies a multi-column table with NULLs and values that
// need escaping, and checks every field comes back exactly.
func TestCopyLinesSplitAndUnescape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connectText(ctx, t, "UTC")
	for _, sql := range []string{
		"DROP TABLE IF EXISTS pgvalue_copy",
		"CREATE TABLE pgvalue_copy (id int, a text, b text, c bytea)",
		`INSERT INTO pgvalue_copy VALUES
			(1, E'a\tb\nc\rd\\e\x01f\x7f', NULL, '\x00ff'),
			(2, '\N', '', NULL),
			(3, NULL, E'\\N', E'\\x5c')`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var buf bytes.Buffer
	if _, err := conn.PgConn().CopyTo(ctx, &buf, "COPY (SELECT * FROM pgvalue_copy ORDER BY id) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	codecs := []*Codec{}
	for _, ti := range []TypeInfo{tiInt4, tiText, tiText, tiBytea} {
		c, _ := NewCodec(ti)
		codecs = append(codecs, c)
	}
	want := [][]record.Value{
		{int32(1), "a\tb\nc\rd\\e\x01f\x7f", nil, []byte{0, 0xff}},
		{int32(2), `\N`, "", nil},
		{int32(3), nil, `\N`, []byte{0x5c}},
	}
	var fields [][]byte
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	lines = lines[:len(lines)-1] // after the last newline
	if len(lines) != len(want) {
		t.Fatalf("COPY gave %d lines, want %d: %q", len(lines), len(want), buf.Bytes())
	}
	for i, line := range lines {
		fields = SplitCopyLine(line, fields)
		if len(fields) != len(codecs) {
			t.Fatalf("line %q: %d fields", line, len(fields))
		}
		for j, f := range fields {
			raw, null := UnescapeCopyText(f)
			var got record.Value
			if !null {
				v, err := codecs[j].Decode(raw)
				if err != nil {
					t.Fatal(err)
				}
				got = v
			}
			if !equalValue(got, want[i][j]) {
				t.Errorf("row %d col %d: field %q = %#v, want %#v", i+1, j+1, f, got, want[i][j])
			}
		}
	}
}

// TestTimestamptzOffsetsFromOtherTimeZones decodes timestamptz values printed in
// sessions whose TimeZone has half-hour, quarter-hour and pre-1900 LMT offsets
// (seconds included), and checks each decodes to the same instant as under UTC.
func TestTimestamptzOffsetsFromOtherTimeZones(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	instants := []string{
		"2024-01-02 03:04:05.123456+00",
		"2024-07-01 00:00:00+00",
		"1890-01-01 00:00:00+00",
		"1900-06-01 12:00:00.5+00",
		"0044-03-15 12:00:00+00 BC",
		"1969-12-31 23:59:59.999999+00",
	}
	c, _ := NewCodec(tiTimestampTZ)
	ref := map[string]record.Value{}
	for _, s := range instants {
		v, err := c.Decode([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		ref[s] = v
	}
	sawSeconds := false
	for _, zone := range []string{"UTC", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham", "Europe/Dublin", "Asia/Kathmandu"} {
		conn := connectText(ctx, t, zone)
		for _, s := range instants {
			rows, err := conn.Query(ctx, "SELECT '"+s+"'::timestamptz")
			if err != nil {
				t.Fatal(err)
			}
			rows.Next()
			text := bytes.Clone(rows.RawValues()[0])
			rows.Close()
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if bytes.Count(text, []byte(":")) == 4 {
				sawSeconds = true
			}
			got, err := c.Decode(text)
			if err != nil {
				t.Errorf("%s: %v", zone, err)
				continue
			}
			if got != ref[s] {
				t.Errorf("%s: %q decodes to %v, want %v (%q)", zone, text, got, ref[s], s)
			}
		}
	}
	if !sawSeconds {
		t.Error("no zone printed an offset with seconds; the LMT case was not exercised")
	}
}
