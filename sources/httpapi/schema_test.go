package httpapi

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/record"
)

// decode decodes one JSON object as the source does.
func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// shape renders a schema's columns as "name kind source [key]", one a line.
func shape(s *record.Schema) string {
	var b strings.Builder
	for _, c := range s.Columns {
		b.WriteString(c.Name + " " + c.Type.String() + " " + c.SourceType)
		if c.Key {
			b.WriteString(" key")
		}
		if c.Nullable == c.Key {
			b.WriteString(" (nullable wrong)")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestInferenceWidensAlongTheLattice(t *testing.T) {
	cases := []struct {
		name    string
		key     []string
		decl    []ColumnDecl
		inf     Inference
		records []string
		want    string   // the schema after the records
		err     []string // the last record's error must contain each; "" for none
	}{{
		name:    "new fields are appended, those of one record by name",
		key:     []string{"id"},
		records: []string{`{"z":true,"id":1,"b":"x"}`, `{"id":2,"a":1.5,"c":[1]}`},
		want:    "id int64 integer key\nb string string\nz bool boolean\na float64 number\nc json array\n",
	}, {
		name:    "int then float widens to float64",
		records: []string{`{"n":1}`, `{"n":2.5}`, `{"n":3}`},
		want:    "n float64 integer|number\n",
	}, {
		name:    "int then string widens to string",
		records: []string{`{"n":1}`, `{"n":"one"}`},
		want:    "n string integer|string\n",
	}, {
		name:    "bool then number widens to string",
		records: []string{`{"f":true}`, `{"f":0}`},
		want:    "f string boolean|integer\n",
	}, {
		name:    "a scalar in a json column is json",
		records: []string{`{"o":{"a":1}}`, `{"o":5}`, `{"o":[1]}`},
		want:    "o json integer|object|array\n",
	}, {
		name:    "null teaches nothing until a value comes",
		records: []string{`{"a":null}`, `{"b":1}`, `{"a":"x"}`, `{"a":null}`},
		want:    "b int64 integer\na string string\n",
	}, {
		name:    "an integer beyond int64 is exact decimal text",
		records: []string{`{"n":12345678901234567890}`},
		want:    "n decimal_text integer\n",
	}, {
		name:    "int64 beyond a double's precision, then a fraction, is decimal text",
		records: []string{`{"n":9007199254740993}`, `{"n":0.5}`},
		want:    "n decimal_text integer|number\n",
	}, {
		name:    "a fraction, then an int64 beyond a double's precision, is decimal text",
		records: []string{`{"n":0.5}`, `{"n":9007199254740993}`},
		want:    "n decimal_text integer|number\n",
	}, {
		name:    "a number a double does not keep is decimal text",
		records: []string{`{"pi":3.14159265358979323846}`},
		want:    "pi decimal_text number\n",
	}, {
		name:    "trailing zeros and exponents a double keeps stay float64",
		records: []string{`{"x":1.0}`, `{"x":1.50}`, `{"x":1e300}`, `{"x":-0.0}`},
		want:    "x float64 number\n",
	}, {
		name:    "an object where an int was is an error naming stream, record, column, types and fix",
		key:     []string{"id"},
		records: []string{`{"id":1,"amount":5}`, `{"id":2,"amount":{"value":5}}`},
		want:    "id int64 integer key\namount int64 integer\n",
		err:     []string{`stream "orders"`, "record id=2", `column "amount"`, "int64", "an object", "declare the column in the stream's schema as json", "{name: amount, type: json}"},
	}, {
		name:    "flatten 1 makes columns of the first level",
		inf:     Inference{Flatten: 1},
		records: []string{`{"a":{"b":1,"c":{"d":2}},"e":[{"f":1}]}`},
		want:    "a_b int64 integer\na_c json object\ne json array\n",
	}, {
		name:    "flatten 2 makes columns of two levels",
		inf:     Inference{Flatten: 2},
		records: []string{`{"a":{"b":1,"c":{"d":2,"e":{"f":3}}}}`},
		want:    "a_b int64 integer\na_c_d int64 integer\na_c_e json object\n",
	}, {
		name:    "a flattened object may be null",
		inf:     Inference{Flatten: 1},
		records: []string{`{"a":{"b":1}}`, `{"a":null}`, `{"a":{"c":"x"}}`},
		want:    "a_b int64 integer\na_c string string\n",
	}, {
		name:    "a scalar where a flattened object was is an error",
		key:     []string{"id"},
		inf:     Inference{Flatten: 1},
		records: []string{`{"id":1,"a":{"b":1}}`, `{"id":2,"a":7}`},
		want:    "id int64 integer key\na_b int64 integer\n",
		err:     []string{`column "a"`, "flattened into columns a_b", "the number 7", "{name: a, path: /a, type: json}"},
	}, {
		name:    "names colliding after flattening are an error",
		inf:     Inference{Flatten: 1},
		records: []string{`{"a_b":1,"a":{"b":2}}`},
		want:    "",
		err:     []string{`column "a_b"`, "from /a_b", "from /a/b", "path: /a_b"},
	}, {
		name:    "a flattened name colliding with an existing column is an error",
		inf:     Inference{Flatten: 1},
		records: []string{`{"a_b":1}`, `{"a":{"b":2}}`},
		want:    "a_b int64 integer\n",
		err:     []string{"from /a/b would have the name of the column from /a_b"},
	}, {
		name:    "names differing only in case collide",
		records: []string{`{"id":1}`, `{"ID":2}`},
		want:    "id int64 integer\n",
		err:     []string{`column "ID"`, "differ only in case"},
	}, {
		name:    "a missing key is an error naming the key and the record's fields",
		key:     []string{"id"},
		records: []string{`{"ID":1,"name":"x"}`},
		want:    "",
		err:     []string{`column "id" is missing or null`, "ID, name", `the record has "ID"`, "case-sensitive"},
	}, {
		name:    "a null key is an error",
		key:     []string{"id", "region"},
		records: []string{`{"id":1,"region":"eu"}`, `{"id":2,"region":null}`},
		want:    "id int64 integer key\nregion string string key\n",
		err:     []string{"record id=2, region=(missing)", `column "region" is missing or null`},
	}, {
		name:    "an object as key is an error",
		key:     []string{"id"},
		records: []string{`{"id":{"a":1}}`},
		err:     []string{`column "id" is a key column and holds an object`},
	}, {
		name:    "a key widens like any inferred column",
		key:     []string{"id"},
		records: []string{`{"id":1}`, `{"id":"x-2"}`},
		want:    "id string integer|string key\n",
	}, {
		name:    "key columns come first, declared columns next",
		key:     []string{"id"},
		decl:    []ColumnDecl{{Name: "when", Type: "timestamp"}, {Name: "id", Type: "string"}},
		records: []string{`{"a":1,"when":"2024-01-01T00:00:00Z","id":"x"}`},
		want:    "id string string key\nwhen timestamptz timestamp\na int64 integer\n",
	}, {
		name:    "declared columns never widen",
		decl:    []ColumnDecl{{Name: "n", Type: "int"}},
		records: []string{`{"n":1}`, `{"n":1.5}`},
		want:    "n int64 int\n",
		err:     []string{`column "n" is declared int`, "the number 1.5"},
	}, {
		name:    "a declared timestamp takes RFC 3339 only",
		decl:    []ColumnDecl{{Name: "at", Type: "timestamp"}},
		records: []string{`{"at":"2024-05-01T12:00:00+02:00"}`, `{"at":"2024-05-01 12:00:00"}`},
		want:    "at timestamptz timestamp\n",
		err:     []string{`column "at" is declared timestamp`, `"2024-05-01 12:00:00"`, "RFC 3339"},
	}, {
		name:    "a declared decimal takes numbers and numeric strings only",
		decl:    []ColumnDecl{{Name: "price", Type: "decimal"}},
		records: []string{`{"price":"12.30"}`, `{"price":1e-3}`, `{"price":"twelve"}`},
		want:    "price decimal_text decimal\n",
		err:     []string{`column "price" is declared decimal`, `"twelve"`},
	}, {
		name:    "a declared date takes YYYY-MM-DD only",
		decl:    []ColumnDecl{{Name: "day", Type: "date"}},
		records: []string{`{"day":"2024-02-29"}`, `{"day":"2023-02-29"}`},
		want:    "day date date\n",
		err:     []string{`column "day" is declared date`, "2023-02-29"},
	}, {
		name:    "a declared path reads a nested value, and its parent is not inferred",
		key:     []string{"cid"},
		decl:    []ColumnDecl{{Name: "cid", Type: "int", Path: "/customer/id"}},
		records: []string{`{"customer":{"id":"17","name":"x"},"n":1}`},
		want:    "cid int64 int key\nn int64 integer\n",
	}, {
		name:    "flattening still infers the siblings of a declared path",
		decl:    []ColumnDecl{{Name: "cid", Type: "int", Path: "/customer/id"}},
		inf:     Inference{Flatten: 1},
		records: []string{`{"customer":{"id":17,"name":"x"}}`},
		want:    "cid int64 int\ncustomer_name string string\n",
	}, {
		name:    "declared_only ignores other fields",
		key:     []string{"id"},
		decl:    []ColumnDecl{{Name: "n", Type: "float"}},
		inf:     Inference{DeclaredOnly: true},
		records: []string{`{"id":1,"n":2,"other":{"x":1}}`},
		want:    "id int64 integer key\nn float64 float\n",
	}, {
		name:    "an exponent beyond the exact range is an error",
		records: []string{`{"n":1e5000}`},
		err:     []string{`column "n"`, "1e5000", "exponent"},
	}, {
		name:    "a field with an empty name is an error",
		records: []string{`{"":1}`},
		err:     []string{"empty name", "path: /"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTracker("api", "orders", tc.key, tc.decl, tc.inf)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.records {
				before := tr.Schema()
				_, err := tr.Observe(decode(t, s))
				last := i == len(tc.records)-1
				if err != nil && !(last && tc.err != nil) {
					t.Fatalf("record %d: %v", i, err)
				}
				if last && tc.err != nil {
					if err == nil {
						t.Fatalf("record %d: no error, want one containing %q", i, tc.err)
					}
					var se *SchemaError
					if !errors.As(err, &se) {
						t.Errorf("error %T is not a *SchemaError", err)
					}
					for _, w := range tc.err {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q\ndoes not contain %q", err, w)
						}
					}
					if tr.Schema() != before {
						t.Errorf("a failing record changed the schema")
					}
				}
			}
			if got := shape(tr.Schema()); got != tc.want {
				t.Errorf("schema:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestObserveReportsChangesAndCountsVersions(t *testing.T) {
	tr, err := NewTracker("api", "s", []string{"id"}, nil, Inference{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tr.Schema().Columns); n != 0 {
		t.Fatalf("before any record the schema has %d columns, want 0 (the key's type is unknown)", n)
	}
	steps := []struct {
		rec     string
		changed bool
		version int
	}{
		{`{"id":1,"a":1}`, true, 1},
		{`{"id":2,"a":2}`, false, 1},
		{`{"id":3,"a":2.5}`, true, 2},
		{`{"id":4,"a":9007199254740993}`, true, 3}, // float64 to decimal_text
		{`{"id":5,"b":null}`, false, 3},
		{`{"id":6,"b":"x"}`, true, 4},
		{`{"id":7,"b":"y","a":1}`, false, 4},
	}
	for _, s := range steps {
		changed, err := tr.Observe(decode(t, s.rec))
		if err != nil {
			t.Fatalf("%s: %v", s.rec, err)
		}
		if changed != s.changed || tr.Schema().Version != s.version {
			t.Errorf("%s: changed %v, version %d; want %v, %d", s.rec, changed, tr.Schema().Version, s.changed, s.version)
		}
	}
}

func TestNewTrackerRejectsBadDeclarations(t *testing.T) {
	cases := []struct {
		name string
		key  []string
		decl []ColumnDecl
		inf  Inference
		err  string
	}{
		{"duplicate names", nil, []ColumnDecl{{Name: "a", Type: "int"}, {Name: "A", Type: "string"}}, Inference{}, "schema[1] (A): the name is taken by schema[0] (a)"},
		{"unknown type", nil, []ColumnDecl{{Name: "a", Type: "integer"}}, Inference{}, `schema[0] (a): type "integer"`},
		{"no name", nil, []ColumnDecl{{Type: "int"}}, Inference{}, "schema[0]: the column has no name"},
		{"path without slash", nil, []ColumnDecl{{Name: "a", Type: "int", Path: "a/b"}}, Inference{}, "must start with /"},
		{"bad escape", nil, []ColumnDecl{{Name: "a", Type: "int", Path: "/a~2"}}, Inference{}, "~ must be followed by 0"},
		{"json key", []string{"a"}, []ColumnDecl{{Name: "a", Type: "json"}}, Inference{}, "key: a is declared json"},
		{"key differing in case", []string{"ID"}, []ColumnDecl{{Name: "id", Type: "int"}}, Inference{}, "names are case-sensitive"},
		{"key twice", []string{"id", "id"}, nil, Inference{}, "id is named twice"},
		{"negative flatten", nil, nil, Inference{Flatten: -1}, "flatten -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTracker("api", "s", tc.key, tc.decl, tc.inf)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func TestRowConvertsToTheKindsGoTypes(t *testing.T) {
	ts := func(s string) record.Timestamp {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return record.TimestampOf(v)
	}
	cases := []struct {
		name  string
		decl  string // "" for an inferred column
		value string // JSON
		want  record.Value
		err   string
	}{
		{"inferred int", "", `42`, int64(42), ""},
		{"inferred negative zero", "", `-0`, int64(0), ""},
		{"inferred float", "", `2.5`, 2.5, ""},
		{"inferred bool", "", `true`, true, ""},
		{"inferred string", "", `"a\u00e9"`, "aé", ""},
		{"inferred huge integer", "", `-123456789012345678901234567890`, record.Decimal("-123456789012345678901234567890"), ""},
		{"inferred inexact number", "", `0.1000000000000000000001`, record.Decimal("0.1000000000000000000001"), ""},
		{"inferred exponent to decimal", "", `1.5e400`, record.Decimal("15" + strings.Repeat("0", 399)), ""},
		{"inferred object, compact and sorted", "", `{"b": [1, 2.50], "a": "<&>"}`, record.JSON(`{"a":"<&>","b":[1,2.50]}`), ""},
		{"inferred array", "", `[ {"x" : null} ]`, record.JSON(`[{"x":null}]`), ""},
		{"declared bool", "bool", `false`, false, ""},
		{"declared bool from string", "bool", `"true"`, nil, "want true or false"},
		{"declared int", "int", `-9223372036854775808`, int64(-9223372036854775808), ""},
		{"declared int from string", "int", `"9007199254740993"`, int64(9007199254740993), ""},
		{"declared int from integral number", "int", `1.0e3`, int64(1000), ""},
		{"declared int out of range", "int", `9223372036854775808`, nil, "want an integer between"},
		{"declared int from fraction", "int", `1.5`, nil, "want an integer"},
		{"declared float rounds", "float", `3.14159265358979323846`, 3.141592653589793, ""},
		{"declared float from string", "float", `"1.25"`, 1.25, ""},
		{"declared float overflow", "float", `1e400`, nil, "beyond a double's range"},
		{"declared decimal keeps scale", "decimal", `1.50`, record.Decimal("1.50"), ""},
		{"declared decimal exponent", "decimal", `-1.50e1`, record.Decimal("-15.0"), ""},
		{"declared decimal small", "decimal", `15e-3`, record.Decimal("0.015"), ""},
		{"declared decimal zero drops sign", "decimal", `-0.00`, record.Decimal("0.00"), ""},
		{"declared decimal from string", "decimal", `"-0012.340"`, nil, "want a number"},
		{"declared decimal from numeric string", "decimal", `"12.340"`, record.Decimal("12.340"), ""},
		{"declared decimal NaN", "decimal", `"NaN"`, record.Decimal("NaN"), ""},
		{"declared string from number as written", "string", `1.50`, "1.50", ""},
		{"declared string from bool", "string", `true`, "true", ""},
		{"declared string from object", "string", `{"a":1}`, `{"a":1}`, ""},
		{"declared timestamp to UTC micros", "timestamp", `"2024-05-01T12:30:00.123456789+02:00"`, ts("2024-05-01T10:30:00.123456Z"), ""},
		{"declared timestamp before 1970", "timestamp", `"1969-12-31T23:59:59.5Z"`, record.Timestamp(-500000), ""},
		{"declared timestamp from number", "timestamp", `1714566600`, nil, "want RFC 3339"},
		{"declared date", "date", `"1970-01-02"`, record.Date(1), ""},
		{"declared date before 1970", "date", `"1969-12-31"`, record.Date(-1), ""},
		{"declared date with time", "date", `"2024-05-01T00:00:00Z"`, nil, "want a date"},
		{"declared json from string", "json", `"x"`, record.JSON(`"x"`), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var decl []ColumnDecl
			if tc.decl != "" {
				decl = []ColumnDecl{{Name: "v", Type: tc.decl}}
			}
			tr, err := NewTracker("api", "s", nil, decl, Inference{})
			if err != nil {
				t.Fatal(err)
			}
			rec := decode(t, `{"v":`+tc.value+`}`)
			_, oerr := tr.Observe(rec)
			row, err := tr.Row(rec, nil)
			if (oerr == nil) != (err == nil) {
				t.Fatalf("Observe: %v, but Row: %v", oerr, err)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(row) != 1 || !reflect.DeepEqual(row[0], tc.want) {
				t.Fatalf("row %#v, want [%#v]", row, tc.want)
			}
		})
	}
}

func TestRowFollowsTheSchemasColumnOrder(t *testing.T) {
	tr, err := NewTracker("api", "s", []string{"id"}, []ColumnDecl{{Name: "day", Type: "date"}}, Inference{Flatten: 1})
	if err != nil {
		t.Fatal(err)
	}
	a := decode(t, `{"id":1,"a":{"b":"x"},"day":"1970-01-03"}`)
	b := decode(t, `{"id":2,"c":true}`)
	for _, r := range []map[string]any{a, b} {
		if _, err := tr.Observe(r); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]record.Value, 0, 8)
	row, err := tr.Row(a, buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []record.Value{int64(1), record.Date(2), "x", nil}
	if !reflect.DeepEqual(row, want) || &row[0] != &buf[:1][0] {
		t.Fatalf("row %#v (reused buffer: %v), want %#v", row, &row[0] == &buf[:1][0], want)
	}
	if got := shape(tr.Schema()); got != "id int64 integer key\nday date date\na_b string string\nc bool boolean\n" {
		t.Fatalf("schema:\n%s", got)
	}
	if _, err := tr.Row(decode(t, `{"c":false}`), nil); err == nil || !strings.Contains(err.Error(), `column "id" is missing`) {
		t.Fatalf("Row without the key: %v", err)
	}
}

// The source may observe a page of records before converting them: every record
// observed must still convert under the schema the later ones widened.
func TestEveryObservedRecordFitsTheWidenedSchema(t *testing.T) {
	batch := []string{
		`{"n":9007199254740993,"f":true,"o":{"a":1}}`,
		`{"n":1,"f":1,"o":2}`,
		`{"n":0.1,"f":"x","o":null}`,
	}
	tr, err := NewTracker("api", "s", nil, nil, Inference{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for _, s := range batch {
		r := decode(t, s)
		if _, err := tr.Observe(r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	var rows [][]record.Value
	for _, r := range recs {
		row, err := tr.Row(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	want := [][]record.Value{
		{"true", record.Decimal("9007199254740993"), record.JSON(`{"a":1}`)},
		{"1", record.Decimal("1"), record.JSON(`2`)},
		{"x", record.Decimal("0.1"), nil},
	}
	if got := shape(tr.Schema()); got != "f string boolean|integer|string\nn decimal_text integer|number\no json integer|object\n" {
		t.Fatalf("schema:\n%s", got)
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("rows %#v\nwant %#v", rows, want)
	}
}

func TestStateRestoreKeepsOrderTypesAndVersion(t *testing.T) {
	key, decl, inf := []string{"id"}, []ColumnDecl{{Name: "at", Type: "timestamp"}}, Inference{Flatten: 1}
	tr, err := NewTracker("api", "s", key, decl, inf)
	if err != nil {
		t.Fatal(err)
	}
	recs := []string{`{"id":1,"z":1,"a":{"b":[1]},"at":"2024-01-01T00:00:00Z"}`, `{"id":2,"z":2.5,"m":"x"}`, `{"id":3,"z":"s","n":12345678901234567890}`}
	for _, s := range recs {
		if _, err := tr.Observe(decode(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	back, err := RestoreTracker(tr.State(), "api", "s", key, decl, inf)
	if err != nil {
		t.Fatal(err)
	}
	a, b := tr.Schema(), back.Schema()
	if shape(a) != shape(b) || a.Fingerprint() != b.Fingerprint() || a.Version != b.Version {
		t.Fatalf("restored schema v%d:\n%s\nwant v%d:\n%s", b.Version, shape(b), a.Version, shape(a))
	}
	for _, s := range recs {
		r := decode(t, s)
		x, err1 := tr.Row(r, nil)
		y, err2 := back.Row(r, nil)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(x, y) {
			t.Fatalf("rows differ: %v %v / %v %v", x, err1, y, err2)
		}
	}
	// The restored tracker goes on widening from what it knew.
	changed, err := back.Observe(decode(t, `{"id":4,"a":{"b":{"c":1}},"q":true}`))
	if err != nil || !changed {
		t.Fatalf("Observe after restore: changed %v, %v", changed, err)
	}
	if _, err := back.Observe(decode(t, `{"id":5,"a":{"b":3}}`)); err != nil {
		t.Fatalf("a scalar in the restored json column a_b: %v", err)
	}
	if _, err := back.Observe(decode(t, `{"id":6,"a":3}`)); err == nil {
		t.Fatalf("a scalar where the restored flattened object a was: no error")
	}
	want := strings.Replace(shape(a), "a_b json array", "a_b json integer|object|array", 1) + "q bool boolean\n"
	if got := shape(back.Schema()); got != want {
		t.Fatalf("schema after restore:\n%s\nwant:\n%s", got, want)
	}
	empty, err := RestoreTracker(nil, "api", "s", key, decl, inf)
	if err != nil || len(empty.Schema().Columns) != 1 {
		t.Fatalf("restore from no state: %v, %v", empty, err)
	}
}

func TestRestoreFollowsTheConfigOfThisRun(t *testing.T) {
	tr, err := NewTracker("api", "s", []string{"id"}, []ColumnDecl{{Name: "old", Type: "string"}}, Inference{Flatten: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Observe(decode(t, `{"id":1,"old":"x","n":1,"a":{"b":1,"c":2},"k":"r1"}`)); err != nil {
		t.Fatal(err)
	}
	if got := shape(tr.Schema()); got != "id int64 integer key\nold string string\na_b int64 integer\na_c int64 integer\nk string string\nn int64 integer\n" {
		t.Fatalf("schema before:\n%s", got)
	}
	// This run: k joins the key, n is declared float, old is no longer declared,
	// /a/c is read by a declared column, and a new declared column comes.
	decl := []ColumnDecl{{Name: "n", Type: "float"}, {Name: "c", Type: "int", Path: "/a/c"}, {Name: "new", Type: "date"}}
	back, err := RestoreTracker(tr.State(), "api", "s", []string{"id", "k"}, decl, Inference{Flatten: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := "id int64 integer key\nk string string key\na_b int64 integer\nn float64 float\nc int64 int\nnew date date\n"
	if got := shape(back.Schema()); got != want {
		t.Fatalf("restored schema:\n%s\nwant:\n%s", got, want)
	}
	if back.Schema().Version != tr.Schema().Version+1 {
		t.Fatalf("version %d after a changed config, want %d", back.Schema().Version, tr.Schema().Version+1)
	}
	// old is inferred again, at the end.
	if _, err := back.Observe(decode(t, `{"id":2,"k":"r2","old":"y"}`)); err != nil {
		t.Fatal(err)
	}
	if got := shape(back.Schema()); got != want+"old string string\n" {
		t.Fatalf("schema:\n%s", got)
	}
}

func TestRestoreRejectsBadState(t *testing.T) {
	cases := map[string]string{
		"not json":         `{`,
		"other format":     `{"format":2,"columns":[]}`,
		"unknown kind":     `{"format":1,"columns":[{"name":"a","path":"/a","kind":"uuid","seen":["string"]}]}`,
		"kind and seen":    `{"format":1,"columns":[{"name":"a","path":"/a","kind":"int64","seen":["string"]}]}`,
		"unknown class":    `{"format":1,"columns":[{"name":"a","path":"/a","kind":"int64","seen":["int"]}]}`,
		"bad path":         `{"format":1,"columns":[{"name":"a","path":"a","kind":"int64","seen":["integer"]}]}`,
		"twice":            `{"format":1,"columns":[{"name":"a","path":"/a","kind":"int64","seen":["integer"]},{"name":"a","path":"/b","kind":"int64","seen":["integer"]}]}`,
		"declared kind":    `{"format":1,"columns":[{"name":"a","path":"/a","kind":"int64","declared":"date"}]}`,
		"name collision":   `{"format":1,"columns":[{"name":"X","path":"/X","kind":"int64","seen":["integer"]}]}`,
		"json key":         `{"format":1,"columns":[{"name":"id","path":"/id","kind":"json","seen":["object"]}]}`,
		"no value classes": `{"format":1,"columns":[{"name":"a","path":"/a","kind":"int64"}]}`,
	}
	for name, state := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := RestoreTracker([]byte(state), "api", "s", []string{"id"}, []ColumnDecl{{Name: "x", Type: "int"}}, Inference{}); err == nil {
				t.Fatalf("no error restoring %s", state)
			}
		})
	}
}

func TestNumberClasses(t *testing.T) {
	cases := map[string]classes{
		"0": cInt, "-0": cInt, "9007199254740992": cInt, "9007199254740993": cIntWide,
		"9223372036854775807": cIntWide, "9223372036854775808": cIntHuge, "-9223372036854775809": cIntHuge,
		"0.1": cNumber, "1e2": cNumber, "1E+2": cNumber, "1.000": cNumber, "5e-324": cNumber,
		"1e-400": cNumberWide, "1e309": cNumberWide, "0.30000000000000001": cNumberWide, "0.30000000000000004": cNumber,
	}
	for s, want := range cases {
		if got, err := classify(json.Number(s)); err != nil || got != want {
			t.Errorf("classify(%s) = %s (%b), %v; want %b", s, got.jsonTypes(), got, err, want)
		}
	}
	for _, bad := range []string{"", "01", "1.", ".5", "+1", "0x10", "NaN", "1e", "1e99999999999999999999"} {
		if _, err := classify(json.Number(bad)); err == nil {
			t.Errorf("classify(%q): no error", bad)
		}
	}
}

func TestDeclaredPathsIndexArraysAndEscapedNames(t *testing.T) {
	decl := []ColumnDecl{
		{Name: "first", Type: "string", Path: "/items/0/sku"},
		{Name: "second", Type: "string", Path: "/items/1/sku"},
		{Name: "leading_zero", Type: "string", Path: "/items/01/sku"},
		{Name: "slash", Type: "int", Path: "/a~1b/c~0d"},
	}
	tr, err := NewTracker("api", "s", nil, decl, Inference{DeclaredOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := decode(t, `{"items":[{"sku":"x"}],"a/b":{"c~d":5}}`)
	if _, err := tr.Observe(rec); err != nil {
		t.Fatal(err)
	}
	row, err := tr.Row(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []record.Value{"x", nil, nil, int64(5)}; !reflect.DeepEqual(row, want) {
		t.Fatalf("row %#v, want %#v", row, want)
	}
}

// A record decoded without UseNumber carries float64s; they are numbers all the same.
func TestGoNumbersAreNumbers(t *testing.T) {
	tr, err := NewTracker("api", "s", []string{"id"}, nil, Inference{})
	if err != nil {
		t.Fatal(err)
	}
	rec := map[string]any{"id": 7.0, "f": 0.5, "i": 3, "j": int64(-4)}
	if _, err := tr.Observe(rec); err != nil {
		t.Fatal(err)
	}
	row, err := tr.Row(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []record.Value{int64(7), 0.5, int64(3), int64(-4)}; !reflect.DeepEqual(row, want) {
		t.Fatalf("row %#v, want %#v", row, want)
	}
	for _, bad := range []any{math.NaN(), struct{}{}, json.Number("1x")} {
		if _, err := tr.Observe(map[string]any{"id": 1, "bad": bad}); err == nil {
			t.Errorf("Observe took %#v", bad)
		}
	}
}
