package duckdb

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/record"
)

// TestDecimalsAreScaledExactlyOrRefused: DuckDB reads an Arrow decimal's unscaled integer
// without checking it against the column, so a value that does not fit must be
// refused here, not cut.
func TestDecimalsAreScaledExactlyOrRefused(t *testing.T) {
	for _, c := range []struct {
		v          record.Value
		prec, sc   int
		want, fail string
	}{
		{record.Decimal("-12.5"), 5, 2, "-1250", ""},
		{record.Decimal("1.50"), 3, 1, "15", ""},
		{record.Decimal("0.001"), 5, 3, "1", ""},
		{record.Decimal("007"), 1, 0, "7", ""},
		{int32(-42), 10, 2, "-4200", ""},
		{uint64(18446744073709551615), 20, 0, "18446744073709551615", ""},
		{record.Decimal("1.234"), 5, 2, "", "more than 2 digits after the point"},
		{record.Decimal("1000"), 5, 2, "", "more than 3 digits before the point"},
		{int64(100000), 6, 2, "", "more than 4 digits before the point"},
		{record.Decimal("NaN"), 5, 2, "", "holds no NaN"},
		{record.Decimal("1e5"), 5, 2, "", "is not a decimal number"},
		{"12", 5, 2, "", "a string value"},
	} {
		n, err := scaled(c.v, c.prec, c.sc)
		switch {
		case c.fail != "" && (err == nil || !strings.Contains(err.Error(), c.fail)):
			t.Errorf("scaled(%v, %d, %d) = %v, %v; want an error saying %q", c.v, c.prec, c.sc, n, err, c.fail)
		case c.fail == "" && (err != nil || n.BigInt().String() != c.want):
			t.Errorf("scaled(%v, %d, %d) = %v, %v; want %s", c.v, c.prec, c.sc, n, err, c.want)
		}
	}
}

// TestDecimalNaNAndInfinityLoadAsNull: a numeric(p,s) of PostgreSQL may hold NaN and
// ±Infinity, which DECIMAL cannot; they load as NULL (in a list too), the connector
// goes on.
func TestDecimalNaNAndInfinityLoadAsNull(t *testing.T) {
	ctx := context.Background()
	dec := record.Type{Kind: record.KindDecimal, Precision: 5, Scale: 2}
	schema := record.NewSchema("src", "specials", []record.Column{
		{Name: "k", SourceType: "int", Type: kind(record.KindInt32), Key: true},
		{Name: "d", SourceType: "numeric(5,2)", Type: dec, Nullable: true},
		{Name: "l", SourceType: "numeric(5,2)[]", Type: list(dec), Nullable: true},
	})
	vals := []record.Decimal{"NaN", "Infinity", "-Infinity", "1.5"}
	var recs []record.Record
	for i, v := range vals {
		recs = append(recs, record.Record{Op: record.OpCreate, Schema: schema, Pos: pos(i + 1), CommitTS: time.Unix(0, 0).UTC(),
			After: []record.Value{int32(i), v, []record.Value{v, record.Decimal("-2")}}})
	}
	path := newPath(t)
	dst := open(ctx, t, "specials", &Config{Path: path})
	if err := dst.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := dst.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	dst.Close(ctx)
	db := readDB(t, path)
	rows, err := db.Query("SELECT d::VARCHAR, l::VARCHAR FROM main.specials ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var d, l sql.NullString
		if err := rows.Scan(&d, &l); err != nil {
			t.Fatal(err)
		}
		got = append(got, d.String+" "+l.String)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{" [NULL, -2.00]", " [NULL, -2.00]", " [NULL, -2.00]", "1.50 [1.50, -2.00]"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("read back %q, want %q", got, want)
	}
}
