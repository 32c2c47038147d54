package mysqle2e

import (
	"fmt"
	"strings"
	"testing"
)

// typeCol is one column of the type table: its type, a value, and how to render it
// as text on each side so the two can be compared.
type typeCol struct {
	name, typ, value string
	maria            string // MariaDB expression; "" means the column itself
	duck             string // DuckDB expression; "" means CAST(column AS VARCHAR)
	want             func(maria string) string
}

func c(name, typ, value string) typeCol { return typeCol{name: name, typ: typ, value: value} }

// micros renders a DATETIME/TIMESTAMP as microseconds since the epoch on both sides,
// so text formatting differences (trailing zeros) do not matter.
func micros(name, typ, value string) typeCol {
	return typeCol{name: name, typ: typ, value: value,
		maria: "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', `" + name + "`)",
		duck:  "CAST(epoch_us(" + name + ") AS VARCHAR)"}
}

func hexed(name, typ, value string) typeCol {
	return typeCol{name: name, typ: typ, value: value, maria: "HEX(`" + name + "`)", duck: "hex(" + name + ")"}
}

func zero(name, typ, value string) typeCol {
	return typeCol{name: name, typ: typ, value: value, want: func(string) string { return "NULL" }}
}

var typeCols = []typeCol{
	c("c_tiny", "tinyint", "-128"), c("c_tiny_max", "tinyint", "127"), c("c_utiny", "tinyint unsigned", "255"),
	c("c_small", "smallint", "-32768"), c("c_usmall", "smallint unsigned", "65535"),
	c("c_med", "mediumint", "-8388608"), c("c_umed", "mediumint unsigned", "16777215"),
	c("c_int", "int", "-2147483648"), c("c_uint", "int unsigned", "4294967295"),
	c("c_big", "bigint", "-9223372036854775808"), c("c_big_max", "bigint", "9223372036854775807"),
	c("c_ubig", "bigint unsigned", "18446744073709551615"),
	c("c_dec65", "decimal(65,30)", "'-12345678901234567890123456789012345.123456789012345678901234567890'"),
	c("c_dec", "decimal(10,2)", "-12345678.90"),
	c("c_float", "float", "-1.25"), c("c_double", "double", "3.141592653589793"),
	{name: "c_bit", typ: "bit(10)", value: "b'1010000001'", maria: "LPAD(BIN(c_bit), 10, '0')"},
	c("c_bool", "bool", "1"), // TINYINT(1): an integer unless tinyint1_as_boolean is set
	c("c_char", "char(5) CHARACTER SET utf8mb4", "'añb'"), c("c_varchar", "varchar(20) CHARACTER SET utf8mb4", "'héllo wörld ✓ 😀'"),
	c("c_text", "text CHARACTER SET utf8mb4", "'long text ✓'"),
	c("c_latin_char", "char(4) CHARACTER SET latin1", "'çà'"), c("c_latin_varchar", "varchar(20) CHARACTER SET latin1", "'café €'"),
	c("c_latin_text", "text CHARACTER SET latin1", "'naïve'"),
	hexed("c_binary", "binary(4)", "x'0102'"), hexed("c_varbinary", "varbinary(8)", "x'00ff10'"), hexed("c_blob", "blob", "x'deadbeef00'"),
	c("c_date", "date", "'2024-02-29'"),
	micros("c_dt0", "datetime", "'2024-01-02 03:04:05'"), micros("c_dt1", "datetime(1)", "'2024-01-02 03:04:05.1'"),
	micros("c_dt2", "datetime(2)", "'1999-12-31 23:59:59.12'"), micros("c_dt3", "datetime(3)", "'2024-01-02 03:04:05.123'"),
	micros("c_dt4", "datetime(4)", "'1000-01-01 00:00:00.0001'"), micros("c_dt5", "datetime(5)", "'2024-01-02 03:04:05.12345'"),
	micros("c_dt6", "datetime(6)", "'9999-12-31 23:59:59.999999'"),
	micros("c_ts0", "timestamp NULL", "'2024-01-02 03:04:05'"), micros("c_ts1", "timestamp(1) NULL", "'2024-01-02 03:04:05.1'"),
	micros("c_ts2", "timestamp(2) NULL", "'1970-01-01 00:00:01.12'"), micros("c_ts3", "timestamp(3) NULL", "'2024-01-02 03:04:05.123'"),
	micros("c_ts4", "timestamp(4) NULL", "'2024-01-02 03:04:05.1234'"), micros("c_ts5", "timestamp(5) NULL", "'2024-01-02 03:04:05.12345'"),
	micros("c_ts6", "timestamp(6) NULL", "'2038-01-19 03:14:07.999999'"),
	c("c_time_neg", "time", "'-838:59:59'"), c("c_time_big", "time(3)", "'100:00:00.5'"), c("c_time", "time(6)", "'12:34:56.789012'"),
	c("c_year", "year", "2024"),
	c("c_enum", "enum('a','b c','ü')", "'b c'"), c("c_set", "set('x','y','z')", "'x,z'"),
	{name: "c_json", typ: "json", value: `'{"a": [1, 2.5, "ü"], "b": null}'`, duck: "CAST(json(c_json) AS VARCHAR)", maria: "JSON_COMPACT(c_json)"},
	zero("c_zero_date", "date", "'0000-00-00'"), zero("c_zero_dt", "datetime", "'0000-00-00 00:00:00'"),
	zero("c_zero_ts", "timestamp NULL", "'0000-00-00 00:00:00'"), zero("c_zero_month", "date", "'2024-00-10'"),
}

// typeValues is the VALUES tuple of row id: the type values, or NULL everywhere.
func typeValues(id int, null bool) string {
	vals := []string{fmt.Sprint(id)}
	for _, tc := range typeCols {
		if null {
			vals = append(vals, "NULL")
		} else {
			vals = append(vals, tc.value)
		}
	}
	return "(" + strings.Join(vals, ", ") + ")"
}

// TestEveryTypeReadsBackFromTheLakeAsMariaDBHasIt syncs a table of every type to
// s3:// (snapshot rows, then streamed inserts, an update and a delete), reads the
// Parquet back with DuckDB and compares each value with what MariaDB returns.
func TestEveryTypeReadsBackFromTheLakeAsMariaDBHasIt(t *testing.T) {
	db := openDB(t)
	cols := []string{"id int PRIMARY KEY"}
	for _, tc := range typeCols {
		cols = append(cols, tc.name+" "+tc.typ)
	}
	mustExec(t, db, "CREATE DATABASE e2etypes")
	mustExec(t, db, "CREATE TABLE e2etypes.t ("+strings.Join(cols, ", ")+")")
	mustExec(t, db, "SET SESSION sql_mode = ''; INSERT INTO e2etypes.t VALUES "+typeValues(1, false)+", "+typeValues(2, true))
	p := newPipe(t, "e2e_types", "e2etypes", true)
	p.sync(t)
	mustExec(t, db, "SET SESSION sql_mode = ''; INSERT INTO e2etypes.t VALUES "+typeValues(3, false)+", "+typeValues(4, true)+", "+typeValues(5, false))
	mustExec(t, db, "UPDATE e2etypes.t SET c_int = 7, c_ubig = 18446744073709551614 WHERE id = 5; DELETE FROM e2etypes.t WHERE id = 2")
	p.sync(t)

	mariaSel := []string{"CAST(id AS CHAR) AS id"}
	duckSel := []string{"CAST(id AS VARCHAR) AS id"}
	for _, tc := range typeCols {
		m := tc.maria
		if m == "" {
			m = "`" + tc.name + "`"
		}
		mariaSel = append(mariaSel, "CAST("+m+" AS CHAR) AS "+tc.name)
		d := tc.duck
		if d == "" {
			d = "CAST(" + tc.name + " AS VARCHAR)"
		}
		duckSel = append(duckSel, d+" AS "+tc.name)
	}
	source := query(t, db, "SELECT "+strings.Join(mariaSel, ", ")+" FROM e2etypes.t ORDER BY id")
	lake := lakeRows(t, p.localLake(t), "e2etypes", "t", duckSel...)
	checkPositions(t, lake)
	var ops []string
	for _, r := range lake {
		ops = append(ops, r["_op"]+r["id"])
	}
	if got, want := strings.Join(ops, " "), "r1 r2 c3 c4 c5 u5 d2"; got != want {
		t.Fatalf("lake records %q, want %q", got, want)
	}
	latest := map[string]row{}
	for _, r := range lake {
		if r["_op"] == "d" {
			delete(latest, r["id"])
		} else {
			latest[r["id"]] = r
		}
	}
	if len(latest) != len(source) {
		t.Fatalf("lake rebuilds %d rows, MariaDB has %d", len(latest), len(source))
	}
	compared := 0
	for _, s := range source {
		l := latest[s["id"]]
		for _, tc := range typeCols {
			mv, mok := s[tc.name]
			want := "NULL"
			if mok {
				want = mv
			}
			if tc.want != nil && mok {
				want = tc.want(mv)
			}
			got, ok := l[tc.name]
			if !ok {
				got = "NULL"
			}
			if got != want {
				t.Errorf("row %s column %s (%s): lake %q, MariaDB %q", s["id"], tc.name, tc.typ, got, want)
			}
			compared++
		}
	}
	t.Logf("%d values compared over %d rows and %d types", compared, len(source), len(typeCols))
	t.Logf("row 1 in the lake: %v", latest["1"])
	// The Parquet types (destinations/parquet/README.md, "Type mapping"), as DuckDB sees them.
	types := query(t, lakeDuck(t), "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "+treeOf(p.localLake(t), "e2etypes", "t")+")")
	want := map[string]string{"c_ubig": "DECIMAL(20,0)", "c_dec": "DECIMAL(10,2)", "c_dec65": "VARCHAR", "c_float": "FLOAT",
		"c_double": "DOUBLE", "c_ts6": "TIMESTAMP WITH TIME ZONE", "c_dt6": "TIMESTAMP", "c_date": "DATE", "c_time": "VARCHAR",
		"c_json": "JSON", "c_blob": "BLOB", "c_bit": "VARCHAR", "c_tiny": "SMALLINT", "c_big": "BIGINT", "c_bool": "SMALLINT"}
	for _, r := range types {
		if w, ok := want[r["column_name"]]; ok && r["column_type"] != w {
			t.Errorf("column %s: Parquet read as %s, want %s", r["column_name"], r["column_type"], w)
		}
	}
}
