package postgres

import (
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/record"
)

// copyReader renders rows in COPY's text format as the server reads them, a few
// rows at a time, so that a load holds the batch's values and one chunk of text, not
// the whole batch rendered.
type copyReader struct {
	cols []record.Type
	rows [][]record.Value
	next int
	buf  []byte
	off  int
	err  error
}

// chunk is how much text is rendered ahead of the server.
const chunk = 256 << 10

func (r *copyReader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.err != nil {
			return 0, r.err
		}
		if r.next == len(r.rows) {
			return 0, io.EOF
		}
		r.buf, r.off = r.buf[:0], 0
		for r.next < len(r.rows) && len(r.buf) < chunk {
			var err error
			if r.buf, err = appendRow(r.buf, r.cols, r.rows[r.next]); err != nil {
				r.err = err
				break
			}
			r.next++
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// appendRow appends one line of COPY text: fields separated by tabs, \N for NULL.
func appendRow(dst []byte, cols []record.Type, row []record.Value) ([]byte, error) {
	for i, v := range row {
		if i > 0 {
			dst = append(dst, '\t')
		}
		if v == nil {
			dst = append(dst, `\N`...)
			continue
		}
		start := len(dst)
		var err error
		dst, err = appendValue(dst, cols[i], v)
		if err != nil {
			return dst[:start], fmt.Errorf("column %d: %w", i+1, err)
		}
	}
	return append(dst, '\n'), nil
}

// appendValue appends v as PostgreSQL's text input reads it, escaped for COPY.
func appendValue(dst []byte, t record.Type, v record.Value) ([]byte, error) {
	switch x := v.(type) {
	case []record.Value:
		lit, err := appendArray(nil, t, x)
		if err != nil {
			return dst, err
		}
		return appendEscaped(dst, lit)
	case string:
		return appendEscaped(dst, []byte(x))
	case record.JSON:
		return appendEscaped(dst, x)
	}
	return appendPlain(dst, t, v)
}

// appendPlain appends a scalar whose text needs no COPY escaping (a bytea's
// backslash is doubled here).
func appendPlain(dst []byte, t record.Type, v record.Value) ([]byte, error) {
	switch x := v.(type) {
	case bool:
		if x {
			return append(dst, 't'), nil
		}
		return append(dst, 'f'), nil
	case int16, int32, int64, uint64:
		dst, _ = record.AppendInteger(dst, x)
		return dst, nil
	case float32:
		return appendFloat(dst, float64(x), 32), nil
	case float64:
		return appendFloat(dst, x, 64), nil
	case record.Decimal:
		return append(dst, x...), nil
	case []byte:
		dst = append(dst, `\\x`...)
		return hex.AppendEncode(dst, x), nil
	case record.Date:
		return appendDate(dst, x.Time()), nil
	case record.Time:
		return appendClock(dst, int64(x)), nil
	case record.Timestamp:
		switch x {
		case record.TimestampInfinity:
			return append(dst, "infinity"...), nil
		case record.TimestampNegInfinity:
			return append(dst, "-infinity"...), nil
		}
		tt := x.Time()
		dst = appendDate(dst, tt)
		bc := tt.Year() <= 0
		if bc {
			dst = dst[:len(dst)-len(" BC")]
		}
		dst = append(dst, ' ')
		dst = appendClock(dst, int64(x)%86400e6+86400e6*btoi(int64(x)%86400e6 < 0))
		if t.Kind == record.KindTimestampTZ {
			dst = append(dst, "+00"...)
		}
		if bc {
			dst = append(dst, " BC"...)
		}
		return dst, nil
	case record.UUID:
		return append(dst, x.String()...), nil
	}
	return dst, fmt.Errorf("a %T value for a %s column", v, t)
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// appendDate appends a date as ISO text: years before 1 are written as PostgreSQL
// reads them, counted back with BC (year 0 is 1 BC).
func appendDate(dst []byte, t time.Time) []byte {
	y, m, d := t.Date()
	bc := y <= 0
	if bc {
		y = 1 - y
	}
	dst = appendDigits(dst, int64(y), 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int64(m), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, int64(d), 2)
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendClock appends a time of day given in microseconds since midnight
// (86400000000 is 24:00:00, which PostgreSQL's time takes).
func appendClock(dst []byte, us int64) []byte {
	dst = appendDigits(dst, us/3600e6, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, us/60e6%60, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, us/1e6%60, 2)
	if frac := us % 1e6; frac != 0 {
		dst = append(dst, '.')
		dst = appendDigits(dst, frac, 6)
	}
	return dst
}

// appendDigits appends a non-negative n with at least width digits.
func appendDigits(dst []byte, n int64, width int) []byte {
	var b [20]byte
	i := len(b)
	for n >= 10 || width > 1 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		width--
	}
	i--
	b[i] = byte('0' + n)
	return append(dst, b[i:]...)
}

func btoi(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// appendArray appends an array literal: {a,"b c",NULL}, every element quoted.
func appendArray(dst []byte, t record.Type, l []record.Value) ([]byte, error) {
	elem := record.Type{Kind: record.KindString}
	if t.Elem != nil {
		elem = *t.Elem
	}
	dst = append(dst, '{')
	for i, e := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		if e == nil {
			dst = append(dst, "NULL"...)
			continue
		}
		var text []byte
		var err error
		switch x := e.(type) {
		case string:
			text = []byte(x)
		case record.JSON:
			text = x
		case []byte:
			text = hex.AppendEncode([]byte(`\x`), x)
		case []record.Value:
			return dst, fmt.Errorf("an array inside an array")
		default:
			if text, err = appendPlain(nil, elem, e); err != nil {
				return dst, err
			}
		}
		dst = append(dst, '"')
		for _, c := range text {
			if c == '"' || c == '\\' {
				dst = append(dst, '\\')
			}
			dst = append(dst, c)
		}
		dst = append(dst, '"')
	}
	return append(dst, '}'), nil
}

// appendEscaped appends text escaped for COPY's text format. PostgreSQL text cannot
// hold a NUL character, which is an error rather than a silent cut.
func appendEscaped(dst, s []byte) ([]byte, error) {
	for i, c := range s {
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case 0:
			return dst, fmt.Errorf("text holds a NUL character at byte %d, which PostgreSQL text cannot store: %q", i, clip(string(s)))
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return strings.ToValidUTF8(s[:40], "") + "..."
	}
	return s
}
