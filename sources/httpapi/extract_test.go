package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestRecordsSelectedByPointerOrJSONPath(t *testing.T) {
	body := `{"data":{"items":[{"id":1},{"id":2}],"one":{"id":9},"none":null,"empty":[],"weird/key~":[{"id":5}]},
	          "pages":[{"rows":[{"id":3}]},{"rows":[{"id":4}]}],"n":12345678901234567890}`
	cases := []struct {
		sel, want string
	}{
		{"/data/items", "1,2"},
		{"$.data.items[*]", "1,2"},
		{"$.data.items", "1,2"}, // an array node holds the records
		{"$['data']['items'][?@.id > 1]", "2"},
		{"/data/one", "9"}, // an object is one record
		{"$.data.one", "9"},
		{"/data/none", ""},
		{"/data/missing", ""},
		{"/data/items/5", ""},
		{"/data/empty", ""},
		{"$.data.missing[*]", ""},
		{"/data/weird~1key~0", "5"},
		{"/pages/1/rows", "4"},
		{"$.pages[*].rows[*]", "3,4"},
		{"$..rows[*]", "3,4"},
	}
	doc, err := decodeJSON([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		sel, err := newJSONSelector(tc.sel)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := sel.records(doc)
		if err != nil {
			t.Errorf("%s: %v", tc.sel, err)
			continue
		}
		if got := recordIDs(recs); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.sel, got, tc.want)
		}
	}
}

func TestNumbersKeepAllTheirDigits(t *testing.T) {
	doc, err := decodeJSON([]byte(`[{"id":12345678901234567890,"amount":0.10000000000000000001}]`))
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := newJSONSelector("")
	recs, err := sel.records(doc)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0]["id"] != json.Number("12345678901234567890") || recs[0]["amount"] != json.Number("0.10000000000000000001") {
		t.Errorf("%#v", recs[0])
	}
}

func TestRecordsThatAreNotObjectsAreErrorsWithTheirIndex(t *testing.T) {
	cases := []struct{ sel, body, want string }{
		{"", `[{"id":1},{"id":2},3]`, "record 2 is a number, not a JSON object"},
		{"/data", `{"data":[{"id":1},"x"]}`, "record 1 is a string, not a JSON object"},
		{"$.data[*]", `{"data":[{"id":1},[1]]}`, "record 1 is an array, not a JSON object"},
		{"/data", `{"data":"oops"}`, "records /data is a string, not an array or object"},
		{"/data/items", `{"data":true}`, "/data/items: the value at /data is a boolean, not an object or array"},
		{"/data/x", `{"data":[{}]}`, `/data/x: "x" is not an index of the array at /data`},
		{"/data/01", `{"data":[{},{}]}`, `"01" is not an index`},
		{"", `{"data":[]}`, "the body is an object, not an array of records: set records"},
		{"", `null`, "the body is null, not an array"},
	}
	for _, tc := range cases {
		doc, err := decodeJSON([]byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		sel, err := newJSONSelector(tc.sel)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sel.records(doc)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s on %s: got %v, want %q", tc.sel, tc.body, err, tc.want)
		}
	}
}

func TestDecodeJSONRefusesWhatIsNotOneJSONValue(t *testing.T) {
	for _, b := range []string{``, ` `, `{"a":1} {"b":2}`, `[1]]`, `{"a":`, `<html>`} {
		if _, err := decodeJSON([]byte(b)); err == nil {
			t.Errorf("%q decoded", b)
		}
	}
	for _, b := range []string{`[]`, " {\"a\":1}\n", `null`} {
		if _, err := decodeJSON([]byte(b)); err != nil {
			t.Errorf("%q: %v", b, err)
		}
	}
}

func TestSelectingTheNextURLOrToken(t *testing.T) {
	doc, _ := decodeJSON([]byte(`{"next":"a","n":7,"nul":null,"empty":"","obj":{},"many":["x","y"]}`))
	cases := []struct{ sel, want, err string }{
		{"/next", "a", ""},
		{"$.next", "a", ""},
		{"/n", "7", ""},
		{"/nul", "", ""},
		{"/empty", "", ""},
		{"/absent", "", ""},
		{"$.absent", "", ""},
		{"/obj", "", "is an object, not a string"},
		{"$.many[*]", "", "selects 2 values"},
	}
	for _, tc := range cases {
		sel, _ := newJSONSelector(tc.sel)
		got, err := sel.value(doc)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %q %v, want %q %q", tc.sel, got, err, tc.want, tc.err)
		}
	}
}

// recordIDs lists the "id" field of each record.
func recordIDs(recs []map[string]any) string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprint(r["id"]))
	}
	return strings.Join(out, ",")
}

// FuzzRecordSelection feeds arbitrary bodies and selectors to the decoder and the
// selectors: a response is the API's to write, so nothing in it may panic.
func FuzzRecordSelection(f *testing.F) {
	f.Add([]byte(`{"data":{"items":[{"id":1},{"id":2}]}}`), "/data/items")
	f.Add([]byte(`{"data":{"items":[{"id":1},{"id":2}]}}`), "$.data.items[*]")
	f.Add([]byte(`[{"a":1},2,"x",null,[]]`), "")
	f.Add([]byte(`{"a":[[{"b":1}]],"c":null}`), "$..b")
	f.Add([]byte(`{"":{"~":[{}]}}`), "/~1/~0")
	f.Add([]byte(`{"a":[1,2,3]}`), "/a/-")
	f.Add([]byte(`{"a":[1,2,3]}`), "$.a[?@ > 1]")
	f.Add([]byte(`1e999999`), "$")
	f.Fuzz(func(t *testing.T, body []byte, selector string) {
		sel, err := newJSONSelector(selector)
		if err != nil {
			return
		}
		doc, err := decodeJSON(body)
		if err != nil {
			return
		}
		recs, err := sel.records(doc)
		if err == nil {
			for i, r := range recs {
				if r == nil {
					t.Fatalf("record %d is nil", i)
				}
			}
		}
		_, _ = sel.value(doc)
	})
}
