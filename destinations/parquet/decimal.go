package parquet

import (
	"errors"
	"fmt"
	"math/bits"
)

// errDecimalSpecial marks NaN and ±Infinity, which DECIMAL cannot hold.
var errDecimalSpecial = errors.New("NaN or infinity has no DECIMAL form")

// unscaled converts exact decimal text ("-12.34") to its unscaled integer at the
// given scale, as a 128-bit two's complement value (hi, lo). It never rounds: a
// fractional digit beyond the scale must be zero. The result has at most precision
// digits. 38 digits need 127 bits, so the 128-bit accumulator cannot overflow.
func unscaled(text string, precision, scale int) (hi, lo uint64, err error) {
	s := text
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, 0, fmt.Errorf("decimal %q: no digits", text)
	}
	switch s {
	case "NaN", "Infinity", "Inf", "inf", "nan", "infinity":
		return 0, 0, errDecimalSpecial
	}
	intPart, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	if intPart == "" && frac == "" {
		return 0, 0, fmt.Errorf("decimal %q: no digits", text)
	}
	// Leading zeros do not count against the precision.
	for len(intPart) > 0 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	if len(frac) > scale {
		rounded := false
		for i := 0; i < len(frac); i++ {
			switch {
			case frac[i] < '0' || frac[i] > '9':
				return 0, 0, fmt.Errorf("decimal %q: not a decimal number", text)
			case i >= scale && frac[i] != '0':
				rounded = true
			}
		}
		if rounded {
			return 0, 0, fmt.Errorf("decimal %q has more than %d fractional digits; it would have to be rounded", text, scale)
		}
		frac = frac[:scale]
	}
	digits := 0
	for i := 0; i < len(intPart); i++ {
		if err := pushDigit(&hi, &lo, &digits, intPart[i], precision); err != nil {
			return 0, 0, decimalErr(err, text, precision, scale)
		}
	}
	for i := 0; i < len(frac); i++ {
		if err := pushDigit(&hi, &lo, &digits, frac[i], precision); err != nil {
			return 0, 0, decimalErr(err, text, precision, scale)
		}
	}
	for i := len(frac); i < scale; i++ {
		if err := pushDigit(&hi, &lo, &digits, '0', precision); err != nil {
			return 0, 0, decimalErr(err, text, precision, scale)
		}
	}
	if neg {
		// two's complement negation of the 128-bit value
		lo = ^lo
		hi = ^hi
		var c uint64
		lo, c = bits.Add64(lo, 1, 0)
		hi += c
	}
	return hi, lo, nil
}

var (
	errNotDigit = errors.New("not a digit")
	errTooLong  = errors.New("too many digits")
)

func decimalErr(err error, text string, precision, scale int) error {
	if errors.Is(err, errTooLong) {
		return fmt.Errorf("decimal %q does not fit decimal(%d,%d)", text, precision, scale)
	}
	return fmt.Errorf("decimal %q: not a decimal number", text)
}

// pushDigit appends one decimal digit to the 128-bit accumulator.
func pushDigit(hi, lo *uint64, digits *int, d byte, precision int) error {
	if d < '0' || d > '9' {
		return errNotDigit
	}
	if *digits > 0 || d != '0' {
		*digits++
		if *digits > precision {
			return errTooLong
		}
	}
	h1, l1 := bits.Mul64(*lo, 10)
	var c uint64
	*lo, c = bits.Add64(l1, uint64(d-'0'), 0)
	*hi = *hi*10 + h1 + c
	return nil
}

// putBigEndian writes the low n bytes of the 128-bit two's complement value (hi, lo)
// big-endian into dst[:n]. The value must fit in n bytes, which the precision check
// guarantees, so the dropped high bytes are pure sign extension.
func putBigEndian(dst []byte, n int, hi, lo uint64) {
	for i := 0; i < n; i++ {
		shift := uint(i) * 8
		var b byte
		if shift < 64 {
			b = byte(lo >> shift)
		} else {
			b = byte(hi >> (shift - 64))
		}
		dst[n-1-i] = b
	}
}
