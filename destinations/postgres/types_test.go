package postgres

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/record"
)

// TestEveryKindRoundTrips writes one value of each kind, and its edges, through COPY
// and reads the server's own text of what it stored.
func TestEveryKindRoundTrips(t *testing.T) {
	str := record.Type{Kind: record.KindString}
	i32 := record.Type{Kind: record.KindInt32}
	byt := record.Type{Kind: record.KindBytes}
	ts := func(s string) record.Timestamp {
		tt, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return record.TimestampOf(tt)
	}
	u, _ := record.ParseUUID("0195e2a4-7b1c-7d3e-8f00-1234567890ab")
	cases := []struct {
		typ  record.Type
		v    record.Value
		want string // the server's ::text
	}{
		{record.Type{Kind: record.KindBool}, true, "true"},
		{record.Type{Kind: record.KindInt16}, int16(-32768), "-32768"},
		{i32, int32(2147483647), "2147483647"},
		{record.Type{Kind: record.KindInt64}, int64(math.MinInt64), "-9223372036854775808"},
		{record.Type{Kind: record.KindUint64}, uint64(math.MaxUint64), "18446744073709551615"},
		{record.Type{Kind: record.KindFloat32}, float32(1.1), "1.1"},
		{record.Type{Kind: record.KindFloat64}, math.Inf(-1), "-Infinity"},
		{record.Type{Kind: record.KindFloat64}, math.NaN(), "NaN"},
		{record.Type{Kind: record.KindFloat64}, 5e-324, "5e-324"},
		{record.Type{Kind: record.KindDecimal, Precision: 38, Scale: 10}, record.Decimal("-1234567890123456789012345678.0123456789"), "-1234567890123456789012345678.0123456789"},
		{record.Type{Kind: record.KindDecimalText, Scale: -1}, record.Decimal("NaN"), "NaN"},
		{record.Type{Kind: record.KindDecimalText, Scale: -1}, record.Decimal("1e3"), "1000"},
		{str, "tab\there\nnew\\line \"q\" 'é' 🙂", "tab\there\nnew\\line \"q\" 'é' 🙂"},
		{str, "", ""},
		{str, `\N`, `\N`},
		{byt, []byte{0, 1, 0xfe, '\\', '\t'}, `\x0001fe5c09`},
		{record.Type{Kind: record.KindDate}, record.Date(-719528), "0001-01-01 BC"}, // year 0
		{record.Type{Kind: record.KindDate}, record.Date(2932896), "9999-12-31"},
		{record.Type{Kind: record.KindTime}, record.Time(86400000000), "24:00:00"},
		{record.Type{Kind: record.KindTime}, record.Time(45296000001), "12:34:56.000001"},
		{record.Type{Kind: record.KindTimestamp}, ts("2026-03-04T05:06:07.123456Z"), "2026-03-04 05:06:07.123456"},
		{record.Type{Kind: record.KindTimestamp}, record.TimestampInfinity, "infinity"},
		{record.Type{Kind: record.KindTimestampTZ}, ts("1969-12-31T23:59:59.999999Z"), "1969-12-31 23:59:59.999999+00"},
		{record.Type{Kind: record.KindTimestampTZ}, record.TimestampNegInfinity, "-infinity"},
		{record.Type{Kind: record.KindTimestampTZ}, record.TimestampOf(time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC)), "0044-03-15 12:00:00+00 BC"},
		{record.Type{Kind: record.KindUUID}, u, "0195e2a4-7b1c-7d3e-8f00-1234567890ab"},
		{record.Type{Kind: record.KindJSON}, record.JSON(`{"a": [1, "t\tb\\"], "b": null}`), `{"a": [1, "t\tb\\"], "b": null}`},
		{record.Type{Kind: record.KindList, Elem: &str}, []record.Value{"a", nil, `q"uo\te`, "", "NULL", "x,y{}"}, `{a,NULL,"q\"uo\\te","","NULL","x,y{}"}`},
		{record.Type{Kind: record.KindList, Elem: &i32}, []record.Value{int32(1), nil, int32(-3)}, "{1,NULL,-3}"},
		{record.Type{Kind: record.KindList, Elem: &byt}, []record.Value{[]byte{0xab}}, `{"\\xab"}`},
		{record.Type{Kind: record.KindList, Elem: &i32}, []record.Value{}, "{}"},
	}
	cols := []record.Column{{Name: "id", Type: i32, Key: true}}
	after := []record.Value{int32(1)}
	for i, c := range cases {
		cols = append(cols, record.Column{Name: "c" + string(rune('a'+i/26)) + string(rune('a'+i%26)), Type: c.typ, Nullable: true})
		after = append(after, c.v)
	}
	s := record.NewSchema("app", "kinds", cols)
	tg := newTarget(t)
	d := tg.open(t, "k", tg.config("merge", false))
	defer d.Close(testCtx(t))
	write(t, d, []record.Record{{Op: record.OpCreate, Schema: s, After: after, Pos: record.Position{1}, CommitTS: time.Now().UTC()}}, true)
	sel := make([]string, len(cases))
	for i := range cases {
		sel[i] = pgIdent(cols[i+1].Name) + "::text"
	}
	got := tg.rows(t, "SELECT "+strings.Join(sel, ", ")+" FROM "+tg.schema+".kinds")
	if len(got) != 1 {
		t.Fatalf("%d rows", len(got))
	}
	for i, c := range cases {
		if got[0][i] != c.want {
			t.Errorf("%s %#v: stored %q, want %q", c.typ, c.v, got[0][i], c.want)
		}
	}
}

func pgIdent(s string) string { return dialect{}.Ident(s) }

func TestTextWithNULIsAnError(t *testing.T) {
	tg := newTarget(t)
	d := tg.open(t, "n", tg.config("append", false))
	defer d.Close(testCtx(t))
	s := record.NewSchema("app", "n", []record.Column{{Name: "id", Type: record.Type{Kind: record.KindInt32}, Key: true}, {Name: "v", Type: record.Type{Kind: record.KindString}}})
	if err := d.Write(testCtx(t), []record.Record{{Op: record.OpCreate, Schema: s, After: []record.Value{int32(1), "a\x00b"}, Pos: record.Position{1}, CommitTS: time.Now().UTC()}}); err != nil {
		t.Fatal(err)
	}
	err := d.Flush(testCtx(t))
	if err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("flush: %v, want an error about the NUL character", err)
	}
}
