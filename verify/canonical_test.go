package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/connectd/connectd/record"
)

func canon(k record.Kind, v record.Value) string {
	return string(AppendCanonical(nil, record.Type{Kind: k}, v))
}

func TestCanonicalIgnoresGoTypeWidth(t *testing.T) {
	if canon(record.KindInt64, int16(-300)) != canon(record.KindInt64, int64(-300)) ||
		canon(record.KindInt32, int32(7)) != canon(record.KindInt32, int64(7)) {
		t.Fatal("integer width changes the canonical form")
	}
	if canon(record.KindUint64, uint64(math.MaxUint64)) != "18446744073709551615" {
		t.Fatal("uint64 max")
	}
	if canon(record.KindFloat32, float32(0.1)) != canon(record.KindFloat32, float64(float32(0.1))) {
		t.Fatal("a float32 carried as float64 differs")
	}
	if canon(record.KindTimestampTZ, record.TimestampInfinity) != strconv.FormatInt(math.MaxInt64, 10) ||
		canon(record.KindTimestampTZ, record.TimestampNegInfinity) != strconv.FormatInt(math.MinInt64, 10) {
		t.Fatal("timestamp infinities are not exact")
	}
}

func TestCanonicalDecimalsAreNormalized(t *testing.T) {
	same := [][]string{
		{"1.50", "1.5", "+1.5", "01.500", "15e-1", "0.15E1"},
		{"0", "-0", "0.000", "-0.0", "0e10", ".0"},
		{"-12.3400", "-12.34"},
		{"100", "100.00", "1e2", "1E+2"},
		{"0.001", ".001", "1e-3"},
		{"NaN", "nan"},
		{"Infinity", "inf"},
		{"-Infinity", "-inf"},
	}
	seen := map[string]string{}
	for _, group := range same {
		want := canon(record.KindDecimal, record.Decimal(group[0]))
		for _, s := range group[1:] {
			if got := canon(record.KindDecimal, record.Decimal(s)); got != want {
				t.Errorf("%q -> %q, %q -> %q", group[0], want, s, got)
			}
		}
		if other, ok := seen[want]; ok {
			t.Errorf("%q and %q collide as %q", other, group[0], want)
		}
		seen[want] = group[0]
	}
	if canon(record.KindDecimalText, "1.5") != canon(record.KindDecimal, record.Decimal("1.50")) {
		t.Error("decimal carried as a string")
	}
	if canon(record.KindDecimal, record.Decimal("abc")) == canon(record.KindDecimal, record.Decimal("0")) {
		t.Error("not a decimal collides")
	}
}

func TestCanonicalJSONIgnoresKeyOrderAndWhitespaceKeepsNumbers(t *testing.T) {
	a := canon(record.KindJSON, record.JSON(`{"b": [1, 2.0, {"y":1,"x":null}], "a": "\u00e9\n"}`))
	b := canon(record.KindJSON, record.JSON("{\"a\":\"é\\n\",\"b\":[1,2.0,{\"x\":null,\"y\":1}]}"))
	if a != b {
		t.Fatalf("%s != %s", a, b)
	}
	if a != `{"a":"é\u000a","b":[1,2.0,{"x":null,"y":1}]}` {
		t.Fatalf("canonical %s", a)
	}
	if canon(record.KindJSON, record.JSON(`2.0`)) == canon(record.KindJSON, record.JSON(`2`)) {
		t.Error("numbers lost their literal text")
	}
	if canon(record.KindJSON, `{"a":1}`) != canon(record.KindJSON, record.JSON(`{ "a" : 1 }`)) {
		t.Error("JSON carried as a string")
	}
	if got := canon(record.KindJSON, record.JSON(`{"a":1} x`)); got != `?{"a":1} x` {
		t.Errorf("trailing garbage: %s", got)
	}
}

func TestCanonicalFloatSpecialValues(t *testing.T) {
	for _, k := range []record.Kind{record.KindFloat32, record.KindFloat64} {
		nan1 := math.Float64frombits(0x7ff8000000000001)
		if canon(k, math.NaN()) != canon(k, nan1) || canon(k, math.NaN()) != "NaN" {
			t.Errorf("%v: NaN payloads differ", k)
		}
		vals := []float64{math.Inf(1), math.Inf(-1), math.NaN(), 0, math.Copysign(0, -1), 1, -1}
		seen := map[string]bool{}
		for _, v := range vals {
			c := canon(k, v)
			if seen[c] {
				t.Errorf("%v: %v collides (%s)", k, v, c)
			}
			seen[c] = true
		}
	}
}

func TestRowFormTellsNullFromEmptyAndConcatenationsApart(t *testing.T) {
	schema := record.NewSchema("s", "t", []record.Column{
		{Name: "a", Type: record.Type{Kind: record.KindString}},
		{Name: "b", Type: record.Type{Kind: record.KindString}},
		{Name: "l", Type: record.Type{Kind: record.KindList, Elem: &record.Type{Kind: record.KindInt32}}},
	})
	rows := [][]record.Value{
		{nil, "", nil},
		{"", nil, nil},
		{"", "", nil},
		{"ab", "c", nil},
		{"a", "bc", nil},
		{"", "", []record.Value{}},
		{"", "", []record.Value{nil}},
		{"", "", []record.Value{int32(1), int32(2)}},
		{"", "", []record.Value{int32(12)}},
		{"", "", []record.Value{int32(1), nil}},
	}
	seen := map[string]int{}
	for i, r := range rows {
		k := string(appendRow(nil, schema, r))
		if j, ok := seen[k]; ok {
			t.Errorf("rows %d and %d collide", j, i)
		}
		seen[k] = i
	}
	if !bytes.Equal(appendRow(nil, schema, []record.Value{"x", nil, []record.Value{int16(3)}}),
		appendRow(nil, schema, []record.Value{"x", nil, []record.Value{int64(3)}})) {
		t.Error("list element width changes the row form")
	}
}

func TestRenderIsReadable(t *testing.T) {
	cases := []struct {
		k    record.Kind
		v    record.Value
		want string
	}{
		{record.KindString, nil, "NULL"},
		{record.KindString, "", `""`},
		{record.KindDate, record.Date(19000), "2022-01-08"},
		{record.KindTimestampTZ, record.Timestamp(1_700_000_000_123456), "2023-11-14 22:13:20.123456Z"},
		{record.KindTimestamp, record.TimestampInfinity, "infinity"},
		{record.KindTime, record.Time(3_600_000_001), "01:00:00.000001"},
		{record.KindBytes, []byte{0xde, 0xad}, `\xdead`},
		{record.KindUUID, record.UUID{0x12, 0x34, 15: 0xff}, "12340000-0000-0000-0000-0000000000ff"},
		{record.KindDecimal, record.Decimal("-01.50"), "-1.5"},
		{record.KindBool, true, "true"},
	}
	for _, c := range cases {
		if got := render(record.Type{Kind: c.k}, c.v); got != c.want {
			t.Errorf("render(%v, %v) = %q, want %q", c.k, c.v, got, c.want)
		}
	}
	lt := record.Type{Kind: record.KindList, Elem: &record.Type{Kind: record.KindString}}
	if got := render(lt, []record.Value{"a", nil}); got != `["a", NULL]` {
		t.Errorf("list: %s", got)
	}
	long := render(record.Type{Kind: record.KindString}, strings.Repeat("é", 100))
	if !strings.HasSuffix(long, "…(202 bytes)") || len(long) > 100 {
		t.Errorf("long: %s", long)
	}
}

// decimalRat parses the grammar appendDecimal accepts, exactly.
func decimalRat(s string) (*big.Rat, bool) {
	_, digits, point, ok := parseDecimal(s)
	if !ok || point > 200 || point < -200 {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(strings.TrimLeft(s, "+"))
	return r, ok && digits != ""
}

func FuzzCanonicalDecimal(f *testing.F) {
	for _, s := range []string{"1.50", "-0", "0.001", "1e3", "12345678901234567890.123", "NaN", "-.5", "5."} {
		f.Add(s, "1.5")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ca := canon(record.KindDecimal, record.Decimal(a))
		if strings.HasPrefix(ca, "?") {
			if _, ok := decimalRat(a); ok {
				t.Fatalf("%q is a decimal but was kept raw", a)
			}
			return
		}
		// The canonical form is a decimal of the same value, and its own canonical form.
		if again := canon(record.KindDecimal, record.Decimal(ca)); again != ca {
			t.Fatalf("%q -> %q -> %q", a, ca, again)
		}
		ra, okA := decimalRat(a)
		rb, okB := decimalRat(b)
		if okA {
			if rc, ok := decimalRat(ca); !ok || rc.Cmp(ra) != 0 {
				t.Fatalf("%q -> %q changes the value", a, ca)
			}
		}
		if okA && okB {
			cb := canon(record.KindDecimal, record.Decimal(b))
			if (ra.Cmp(rb) == 0) != (ca == cb) {
				t.Fatalf("%q (%q) and %q (%q): equal values %v, equal forms %v", a, ca, b, cb, ra.Cmp(rb) == 0, ca == cb)
			}
		}
	})
}

func FuzzCanonicalFloat(f *testing.F) {
	f.Add(uint64(0), uint64(1<<63))
	f.Add(math.Float64bits(0.1), math.Float64bits(0.30000000000000004))
	f.Add(math.Float64bits(math.Inf(1)), math.Float64bits(math.NaN()))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		fa, fb := math.Float64frombits(a), math.Float64frombits(b)
		ca, cb := canon(record.KindFloat64, fa), canon(record.KindFloat64, fb)
		bothNaN := math.IsNaN(fa) && math.IsNaN(fb)
		if (ca == cb) != (a == b || bothNaN) {
			t.Fatalf("%x (%s) and %x (%s)", a, ca, b, cb)
		}
		// Formatting then parsing round trips to the same form.
		if p, err := strconv.ParseFloat(ca, 64); !math.IsNaN(fa) && (err != nil || canon(record.KindFloat64, p) != ca) {
			t.Fatalf("%s does not round trip: %v %v", ca, p, err)
		}
		f32a, f32b := float32(fa), float32(fb)
		c32a, c32b := canon(record.KindFloat32, f32a), canon(record.KindFloat32, f32b)
		same32 := math.Float32bits(f32a) == math.Float32bits(f32b) || f32a != f32a && f32b != f32b
		if (c32a == c32b) != same32 {
			t.Fatalf("float32 %v (%s) and %v (%s)", f32a, c32a, f32b, c32b)
		}
	})
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[true,null]}`, `[1.0, "x\u0000"]`, `"\ud800"`, `{"a":1,"a":2}`, `  3  `, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := canon(record.KindJSON, record.JSON(s))
		if strings.HasPrefix(c, "?") {
			if ref := string(appendJSONReference(nil, []byte(s))); ref != c {
				t.Fatalf("%q: kept raw, but encoding/json gives %q", s, ref)
			}
			return // not JSON: kept raw
		}
		// encoding/json, through reflection, gives the same canonical form.
		if ref := string(appendJSONReference(nil, []byte(s))); ref != c {
			t.Fatalf("%q: %q, through encoding/json %q", s, c, ref)
		}
		// The canonical form is JSON whose canonical form is itself.
		if again := canon(record.KindJSON, record.JSON(c)); again != c {
			t.Fatalf("%q -> %q -> %q", s, c, again)
		}
	})
}

// appendJSONReference is the canonical JSON form through encoding/json, what the
// hand-written parser must agree with. It appends a JSON document re-encoded compactly with object keys sorted and
// numbers as their literal text, so whitespace and key order do not matter but "1.0"
// and "1" stay apart, as jsonb keeps them. A duplicate key keeps its last value, as
// jsonb does. Text that does not parse is kept raw behind a '?' (no JSON starts so).
func appendJSONReference(dst []byte, text []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return append(append(dst, '?'), text...)
	}
	if _, err := dec.Token(); err != io.EOF {
		return append(append(dst, '?'), text...)
	}
	return appendJSONValueRef(dst, v)
}

func appendJSONValueRef(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		if x {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case json.Number:
		return append(dst, x...)
	case string:
		return appendJSONString(dst, x)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONValueRef(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONValueRef(dst, x[k])
		}
		return append(dst, '}')
	}
	return fmt.Appendf(dst, "%v", v)
}

// appendRow appends the row form of row, whose values have the types of schema's
// columns: NULL, an empty string and an empty list are three different forms.
func appendRow(dst []byte, schema *record.Schema, row []record.Value) []byte {
	e := newEncoder(schema)
	for i := range row {
		dst = e.appendColumn(dst, i, row[i])
	}
	return dst
}

// render renders v, a value of type t, readably for a report: "NULL" for nil, strings
// quoted, bytes in hex, dates and timestamps in ISO form, long values cut to about 80
// bytes with the full length appended.
func render(t record.Type, v record.Value) string {
	if v == nil {
		return "NULL"
	}
	return renderCanonical(t, AppendCanonical(nil, t, v))
}
