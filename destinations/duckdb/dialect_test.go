package duckdb

import (
	"testing"

	"github.com/connectd/connectd/record"
)

func TestIdentQuotesAndEscapes(t *testing.T) {
	for in, want := range map[string]string{`orders`: `"orders"`, `Order "Items"`: `"Order ""Items"""`, ``: `""`} {
		if got := (dialect{}).Ident(in); got != want {
			t.Errorf("Ident(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestCatalogTypesMapBack covers what the round trip cannot: types a user's own
// columns may have, which map to no logical type and are never written.
func TestCatalogTypesMapBack(t *testing.T) {
	for typ, want := range map[string]string{
		"DECIMAL(4,1)":                 "decimal(4,1)",
		"DECIMAL(38,0)[]":              "list<decimal(38,0)>",
		"TIMESTAMP WITH TIME ZONE[][]": "list<list<timestamptz>>",
		"VARCHAR":                      "string",
		"UBIGINT":                      "uint64",
		"TINYINT":                      "invalid",
		"HUGEINT[]":                    "invalid",
		"INTERVAL":                     "invalid",
		"STRUCT(a INTEGER)":            "invalid",
		"TIMESTAMP_NS":                 "invalid",
		"DECIMAL(x,1)":                 "invalid",
	} {
		if got := parseType(typ).String(); got != want {
			t.Errorf("parseType(%q) = %s, want %s", typ, got, want)
		}
	}
	for _, bad := range []record.Type{
		{Kind: record.KindDecimal, Precision: 39},
		{Kind: record.KindDecimal, Precision: 5, Scale: 6},
		{Kind: record.KindList},
		{Kind: record.KindInvalid},
	} {
		if typ, err := (dialect{}).ColumnType(bad); err == nil {
			t.Errorf("ColumnType(%s) = %s, want an error", bad, typ)
		}
	}
}
