package parquet

import (
	"errors"
	"math/big"
	"strings"
	"testing"
)

// bigOf reads back what unscaled produced, as the signed integer it encodes.
func bigOf(hi, lo uint64) *big.Int {
	v := new(big.Int).Lsh(new(big.Int).SetUint64(hi), 64)
	v.Or(v, new(big.Int).SetUint64(lo))
	if hi>>63 == 1 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	return v
}

func TestUnscaledIsExact(t *testing.T) {
	cases := []struct {
		text      string
		p, s      int
		want, err string
	}{
		{"0", 5, 2, "0", ""},
		{"-0", 5, 2, "0", ""},
		{"-0.00", 5, 2, "0", ""},
		{"12.3", 5, 2, "1230", ""},
		{"+12.3", 5, 2, "1230", ""},
		{".5", 5, 2, "50", ""},
		{"5.", 5, 2, "500", ""},
		{"-999.99", 5, 2, "-99999", ""},
		{"1.2300000", 5, 2, "123", ""},   // trailing zeros beyond the scale are exact
		{"000123.45", 5, 2, "12345", ""}, // leading zeros do not count
		{"-1.5", 10, 0, "", "would have to be rounded"},
		{"1.001", 5, 2, "", "would have to be rounded"},
		{"1000", 5, 2, "", "does not fit decimal(5,2)"},
		{"99999999999999999999999999999999999999", 38, 0, "99999999999999999999999999999999999999", ""},
		{"-99999999999999999999999999999999999999", 38, 0, "-99999999999999999999999999999999999999", ""},
		{"-1234567890123456789012345678.0123456789", 38, 10, "-12345678901234567890123456780123456789", ""},
		{"999999999999999999999999999999999999999", 38, 0, "", "does not fit"},
		{"1", 38, 38, "", "does not fit"},
		{"0.1", 38, 38, "10000000000000000000000000000000000000", ""},
		{"9223372036854775808", 19, 0, "9223372036854775808", ""},
		{"-9223372036854775809", 20, 0, "-9223372036854775809", ""},
		{"1e5", 10, 0, "", "not a decimal number"},
		{"1.2.3", 10, 2, "", "not a decimal number"},
		{"", 10, 2, "", "no digits"},
		{"-", 10, 2, "", "no digits"},
		{".", 10, 2, "", "no digits"},
		{"12a", 10, 2, "", "not a decimal number"},
	}
	for _, c := range cases {
		hi, lo, err := unscaled(c.text, c.p, c.s)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("unscaled(%q, %d, %d): error %v, want %q", c.text, c.p, c.s, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("unscaled(%q, %d, %d): %v", c.text, c.p, c.s, err)
			continue
		}
		if got := bigOf(hi, lo).String(); got != c.want {
			t.Errorf("unscaled(%q, %d, %d) = %s, want %s", c.text, c.p, c.s, got, c.want)
		}
	}
	for _, special := range []string{"NaN", "Infinity", "-Infinity"} {
		if _, _, err := unscaled(special, 10, 2); !errors.Is(err, errDecimalSpecial) {
			t.Errorf("unscaled(%q): %v, want errDecimalSpecial", special, err)
		}
	}
}

func TestPutBigEndianSignExtends(t *testing.T) {
	for _, text := range []string{"0", "1", "-1", "127", "-128", "-99999999999999999999", "99999999999999999999"} {
		hi, lo, err := unscaled(text, 20, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := decimalBytes(20)
		buf := make([]byte, n)
		putBigEndian(buf, n, hi, lo)
		// Decode n-byte big-endian two's complement.
		v := new(big.Int).SetBytes(buf)
		if buf[0]&0x80 != 0 {
			v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
		}
		if v.String() != text {
			t.Errorf("%s encodes as %x, which reads back as %s", text, buf, v)
		}
	}
}

func TestDecimalBytes(t *testing.T) {
	want := map[int]int{1: 1, 2: 1, 3: 2, 4: 2, 9: 4, 10: 5, 18: 8, 19: 9, 20: 9, 21: 9, 22: 10, 38: 16}
	for p, n := range want {
		if got := decimalBytes(p); got != n {
			t.Errorf("decimalBytes(%d) = %d, want %d", p, got, n)
		}
	}
}

func FuzzUnscaled(f *testing.F) {
	for _, s := range []string{"0", "-12.34", "99999999999999999999999999999999999999", ".5", "1.000", "NaN"} {
		f.Add(s, 38, 4)
	}
	f.Fuzz(func(t *testing.T, text string, p, s int) {
		if p < 1 || p > 38 || s < 0 || s > p {
			return
		}
		hi, lo, err := unscaled(text, p, s)
		if err != nil {
			return
		}
		// Whatever is accepted must be exactly text * 10^s, an integer of at most p digits.
		r, ok := new(big.Rat).SetString(strings.TrimPrefix(text, "+"))
		if !ok {
			t.Fatalf("unscaled accepted %q, which is not a number", text)
		}
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(s)), nil)))
		if !r.IsInt() || r.Num().Cmp(bigOf(hi, lo)) != 0 {
			t.Fatalf("unscaled(%q, %d, %d) = %s, want %s", text, p, s, bigOf(hi, lo), r)
		}
		if len(new(big.Int).Abs(r.Num()).String()) > p && r.Num().Sign() != 0 {
			t.Fatalf("unscaled(%q, %d, %d) accepted more than %d digits", text, p, s, p)
		}
	})
}
