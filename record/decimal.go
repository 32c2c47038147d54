package record

import (
	"strconv"
	"strings"
)

// AppendDecimalAt appends the plain decimal text d ("-12.5", "007") as a DECIMAL of
// the given scale prints it: no leading zeros but one before the point, exactly scale
// fraction digits, no sign on zero. It reports false, appending nothing, when d is not
// a plain decimal (NaN, an exponent) or would lose a non-zero digit: rounding could
// make two different values print alike.
func AppendDecimalAt(dst []byte, d string, scale int) ([]byte, bool) {
	neg := strings.HasPrefix(d, "-")
	d = strings.TrimPrefix(strings.TrimPrefix(d, "-"), "+")
	ip, fp, _ := strings.Cut(d, ".")
	if ip == "" && fp == "" || !digits(ip) || !digits(fp) {
		return dst, false
	}
	if len(fp) > scale {
		if strings.Trim(fp[scale:], "0") != "" {
			return dst, false
		}
		fp = fp[:scale]
	}
	ip = strings.TrimLeft(ip, "0")
	if neg && strings.Trim(ip+fp, "0") != "" {
		dst = append(dst, '-')
	}
	if ip == "" {
		ip = "0"
	}
	dst = append(dst, ip...)
	if scale > 0 {
		dst = append(dst, '.')
		dst = append(dst, fp...)
		for range scale - len(fp) {
			dst = append(dst, '0')
		}
	}
	return dst, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// AppendInteger appends the decimal text of an integer of any Go width (the widths
// the kinds carry, and int, int8, uint8..uint64 a source may hand over); false, with
// nothing appended, for any other value.
func AppendInteger(dst []byte, v Value) ([]byte, bool) {
	switch x := v.(type) {
	case int:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int8:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int16:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int64:
		return strconv.AppendInt(dst, x, 10), true
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(dst, x, 10), true
	}
	return dst, false
}
