package record

import "strings"

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
