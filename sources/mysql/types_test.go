package mysql

import (
	"testing"
	"time"

	"github.com/connectd/connectd/record"
)

// TestBinlogTimesAndDecimalsAsGoMySQLGivesThem: with ParseTime on and UseDecimal off,
// go-mysql hands over DATETIME/TIMESTAMP as time.Time (text for zero and pre-1970
// values) and DECIMAL as exact text; each must decode to what the text form did.
func TestBinlogTimesAndDecimalsAsGoMySQLGivesThem(t *testing.T) {
	col := func(ddl string) colType {
		d, err := parseDDL("CREATE TABLE t (c "+ddl+")", "db")
		if err != nil {
			t.Fatal(err)
		}
		return mapType(d.def.Columns[0], "", typeOpts{})
	}
	dt, ts, dec := col("datetime(6)"), col("timestamp(3) NULL"), col("decimal(12,2)")
	for _, c := range []struct {
		ct   colType
		in   any
		text string // the same value as text, the way the old settings gave it
	}{
		{dt, time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC), "2024-01-02 03:04:05.123456"},
		{dt, time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), "9999-12-31 23:59:59.999999"},
		{dt, "1000-01-01 00:00:00.000100", "1000-01-01 00:00:00.000100"},
		{ts, time.Unix(1704164645, 123000000), "2024-01-02 03:04:05.123"},
		{ts, time.Unix(1704164645, 0).In(time.FixedZone("X", 5*3600)), "2024-01-02 03:04:05"},
		{dec, "-12345678.90", "-12345678.90"},
	} {
		got, w, err := c.ct.fromBinlog(c.in)
		if err != nil || w != 0 {
			t.Errorf("fromBinlog(%v) = %v, warning %v, %v", c.in, got, w, err)
			continue
		}
		want, _, err := c.ct.fromBinlog(c.text)
		if err != nil || got != want {
			t.Errorf("fromBinlog(%v) = %v (%T), want %v as from %q (err %v)", c.in, got, got, want, c.text, err)
		}
	}
	if got, _, _ := dec.fromBinlog("0.05"); got != record.Decimal("0.05") {
		t.Errorf("decimal text = %v, want it kept exactly", got)
	}
	if got, w, err := dt.fromBinlog("0000-00-00 00:00:00"); got != nil || w != warnZeroDate || err != nil {
		t.Errorf("zero datetime = %v, warning %v, %v; want null with the zero-date warning", got, w, err)
	}
}
