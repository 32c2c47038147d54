package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/connectd/connectd/record"
)

// goTypes is the Go type of each kind the tracker produces (record/schema.go).
var goTypes = map[record.Kind]reflect.Type{
	record.KindBool:        reflect.TypeFor[bool](),
	record.KindInt64:       reflect.TypeFor[int64](),
	record.KindFloat64:     reflect.TypeFor[float64](),
	record.KindDecimalText: reflect.TypeFor[record.Decimal](),
	record.KindString:      reflect.TypeFor[string](),
	record.KindJSON:        reflect.TypeFor[record.JSON](),
	record.KindTimestampTZ: reflect.TypeFor[record.Timestamp](),
	record.KindDate:        reflect.TypeFor[record.Date](),
}

// checkRow checks that row has one value of the kind's Go type (or nil) per column.
func checkRow(t *testing.T, s *record.Schema, row []record.Value) {
	t.Helper()
	if len(row) != len(s.Columns) {
		t.Fatalf("row of %d values for %d columns", len(row), len(s.Columns))
	}
	for i, c := range s.Columns {
		if row[i] == nil {
			if c.Key {
				t.Fatalf("key column %s is null", c.Name)
			}
			continue
		}
		if got := reflect.TypeOf(row[i]); got != goTypes[c.Type.Kind] {
			t.Fatalf("column %s (%s) holds a %s", c.Name, c.Type, got)
		}
		if j, ok := row[i].(record.JSON); ok && !json.Valid(j) {
			t.Fatalf("column %s holds invalid JSON %s", c.Name, j)
		}
	}
}

// FuzzObserveRow feeds arbitrary JSON objects (one per line) to a tracker: Observe
// and Row never panic, Observe fails only with a *SchemaError, every record Observe
// took converts under the final schema, and the state restores the same schema.
func FuzzObserveRow(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"a":{"b":1,"c":{"d":[1,2]}},"n":12345678901234567890}` + "\n" + `{"id":2,"a":{"b":2.5},"x":"<&>"}`,
		`{"id":1,"v":true}` + "\n" + `{"id":"2","v":3}` + "\n" + `{"id":3,"v":{"w":null}}`,
		`{"id":1,"ts":"2024-01-01T00:00:00Z","d":"1.50","x":{"n":"9007199254740993"}}` + "\n" + `{"id":2,"ts":"nope"}`,
		`{"a_b":1,"a":{"b":2}}` + "\n" + `{"":1,"ID":2,"id":3}`,
		`{"f":1e400,"g":1e-400,"h":-0.0,"i":1e5000}`,
	} {
		f.Add([]byte(s), uint8(1), true, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, flatten uint8, keyed, declared bool) {
		var key []string
		var decl []ColumnDecl
		if keyed {
			key = []string{"id"}
		}
		if declared {
			decl = []ColumnDecl{{Name: "ts", Type: "timestamp"}, {Name: "d", Type: "decimal"},
				{Name: "xn", Type: "int", Path: "/x/n"}, {Name: "s", Type: "string"}, {Name: "day", Type: "date"}}
		}
		inf := Inference{Flatten: int(flatten % 4)}
		tr, err := NewTracker("api", "s", key, decl, inf)
		if err != nil {
			t.Fatal(err)
		}
		var observed []map[string]any
		for _, line := range bytes.Split(data, []byte("\n")) {
			d := json.NewDecoder(bytes.NewReader(line))
			d.UseNumber()
			var rec map[string]any
			if d.Decode(&rec) != nil || rec == nil {
				continue
			}
			before := tr.Schema()
			changed, err := tr.Observe(rec)
			if err != nil {
				var se *SchemaError
				if !errors.As(err, &se) {
					t.Fatalf("Observe: %T %v", err, err)
				}
				if tr.Schema() != before {
					t.Fatalf("a failed Observe changed the schema")
				}
				if _, err := tr.Row(rec, nil); err == nil && keyed && rec["id"] == nil {
					t.Fatalf("Row took a record without its key")
				}
				continue
			}
			if changed != (tr.Schema() != before) {
				t.Fatalf("Observe reported changed %v, the schema says otherwise", changed)
			}
			observed = append(observed, rec)
			row, err := tr.Row(rec, nil)
			if err != nil {
				t.Fatalf("Row after Observe: %v", err)
			}
			checkRow(t, tr.Schema(), row)
		}
		rows := make([][]record.Value, len(observed))
		for i, rec := range observed {
			if rows[i], err = tr.Row(rec, nil); err != nil {
				t.Fatalf("Row under the final schema: %v", err)
			}
			checkRow(t, tr.Schema(), rows[i])
		}
		back, err := RestoreTracker(tr.State(), "api", "s", key, decl, inf)
		if err != nil {
			t.Fatalf("restore: %v\nstate %s", err, tr.State())
		}
		if a, b := tr.Schema(), back.Schema(); shape(a) != shape(b) || a.Version != b.Version {
			t.Fatalf("restored v%d:\n%s\nwant v%d:\n%s", b.Version, shape(b), a.Version, shape(a))
		}
		for i, rec := range observed {
			row, err := back.Row(rec, nil)
			if err != nil || !reflect.DeepEqual(row, rows[i]) {
				t.Fatalf("restored Row %v, %v; want %v", row, err, rows[i])
			}
		}
	})
}

// FuzzRestoreTracker restores arbitrary state: an error or a tracker that works.
func FuzzRestoreTracker(f *testing.F) {
	tr, _ := NewTracker("api", "s", []string{"id"}, nil, Inference{Flatten: 1})
	_, _ = tr.Observe(map[string]any{"id": json.Number("1"), "a": map[string]any{"b": "x"}, "c": []any{}})
	f.Add(tr.State())
	f.Add([]byte(`{"format":1,"version":3,"columns":[{"name":"x","path":"/x/~1","kind":"json","seen":["object","integer"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := RestoreTracker(data, "api", "s", []string{"id"}, []ColumnDecl{{Name: "d", Type: "date"}}, Inference{Flatten: 1})
		if err != nil {
			return
		}
		rec := map[string]any{"id": json.Number("7"), "a": map[string]any{"b": "x"}, "x": map[string]any{"/": true}}
		if _, err := tr.Observe(rec); err == nil {
			row, err := tr.Row(rec, nil)
			if err != nil {
				t.Fatalf("Row after Observe: %v", err)
			}
			checkRow(t, tr.Schema(), row)
		}
	})
}
