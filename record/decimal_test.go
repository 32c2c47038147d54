package record

import "testing"

func TestAppendDecimalAt(t *testing.T) {
	for _, c := range []struct {
		in    string
		scale int
		want  string
		ok    bool
	}{
		{"12.5", 2, "12.50", true}, {"-0.00", 2, "0.00", true}, {"007", 0, "7", true}, {".5", 1, "0.5", true},
		{"-1.2300", 2, "-1.23", true}, {"1.234", 2, "", false}, {"NaN", 2, "", false}, {"1e3", 0, "", false},
		{"-", 0, "", false}, {"+3", 1, "3.0", true},
	} {
		got, ok := AppendDecimalAt(nil, c.in, c.scale)
		if string(got) != c.want || ok != c.ok {
			t.Errorf("AppendDecimalAt(%q, %d) = %q, %v; want %q, %v", c.in, c.scale, got, ok, c.want, c.ok)
		}
	}
}

func TestAppendInteger(t *testing.T) {
	for _, c := range []struct {
		v    Value
		want string
		ok   bool
	}{{int8(-8), "-8", true}, {int16(-16), "-16", true}, {int32(32), "32", true}, {int64(-1 << 63), "-9223372036854775808", true},
		{int(7), "7", true}, {uint8(255), "255", true}, {uint64(1<<64 - 1), "18446744073709551615", true}, {1.5, "", false}, {"1", "", false}} {
		got, ok := AppendInteger(nil, c.v)
		if string(got) != c.want || ok != c.ok {
			t.Errorf("AppendInteger(%#v) = %q, %v", c.v, got, ok)
		}
	}
}
