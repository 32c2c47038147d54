package duckdb

import (
	"strings"
	"testing"

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
