package warehouse

import (
	"testing"

	"github.com/connectd/connectd/record"
)

func TestLayoutRulesFirstMatchWins(t *testing.T) {
	l := Layout{Schema: "dw", Table: "{namespace}_{table}", Mode: Merge, Rules: []Rule{
		{Match: "public.audit_*", Mode: "append"},
		{Match: "public.*", Delete: "soft"},
	}}
	for _, c := range []struct {
		ns, table string
		want      Target
	}{
		{"public", "audit_log", Target{"dw", "public_audit_log", Append, false}},
		{"public", "orders", Target{"dw", "public_orders", Merge, true}},
		{"sales", "orders", Target{"dw", "sales_orders", Merge, false}},
	} {
		if got := l.For(c.ns, c.table); got != c.want {
			t.Errorf("%s.%s: %+v, want %+v", c.ns, c.table, got, c.want)
		}
	}
}

func TestWidens(t *testing.T) {
	k := func(kind record.Kind) record.Type { return record.Type{Kind: kind} }
	dec := func(p, s int) record.Type { return record.Type{Kind: record.KindDecimal, Precision: p, Scale: s} }
	i32 := k(record.KindInt32)
	list := func(e record.Type) record.Type { return record.Type{Kind: record.KindList, Elem: &e} }
	for _, c := range []struct {
		from, to record.Type
		want     bool
	}{
		{k(record.KindInt16), i32, true},
		{i32, k(record.KindInt64), true},
		{k(record.KindInt64), i32, false},
		{k(record.KindInt64), k(record.KindUint64), false},
		{k(record.KindUint64), k(record.KindInt64), false},
		{k(record.KindUint64), dec(20, 0), true},
		{k(record.KindInt64), dec(18, 0), false},
		{k(record.KindInt64), dec(21, 2), true},
		{k(record.KindFloat32), k(record.KindFloat64), true},
		{k(record.KindFloat64), k(record.KindFloat32), false},
		{dec(10, 2), dec(12, 3), true},
		{dec(10, 2), dec(12, 1), false},
		{dec(10, 2), dec(10, 3), false},
		{dec(10, 2), k(record.KindDecimalText), true},
		{k(record.KindString), k(record.KindString), true},
		{k(record.KindString), i32, false},
		{list(k(record.KindInt16)), list(i32), true},
		{list(i32), list(k(record.KindInt16)), false},
	} {
		if got := Widens(c.from, c.to); got != c.want {
			t.Errorf("Widens(%s, %s) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}
