package mysql

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/record"
	"github.com/shopspring/decimal"
	"golang.org/x/text/encoding"
)

// colType is how one column's values are decoded: from the text protocol (snapshot)
// and from binlog row images (stream), both to the same record value.
type colType struct {
	base     string
	typ      record.Type
	dec      int      // fractional seconds digits (time types), scale (decimal)
	width    int      // BIT(M) bits, BINARY(n) bytes
	values   []string // ENUM/SET members
	unsigned bool
	bool     bool              // TINYINT(1) read as a boolean (tinyint1_as_boolean)
	enc      encoding.Encoding // non-UTF-8 character set of a text column; nil for UTF-8
	known    bool              // false: no mapping, values kept as text
	source   string            // the type as the server writes it
}

// warning is a value problem the caller reports once per column.
type warning uint8

const (
	warnNone     warning = iota
	warnZeroDate         // a zero or partly zero date, mapped to null
	warnBool             // a TINYINT(1) read as a boolean holding something other than 0 or 1
	warnCharset          // text in a character set without a decoder, kept as bytes
)

// sourceTypeString renders a typeSpec as SHOW CREATE TABLE would (lower case).
func sourceTypeString(t typeSpec) string {
	var b strings.Builder
	b.WriteString(t.Base)
	if len(t.Args) > 0 {
		b.WriteByte('(')
		for i, a := range t.Args {
			if i > 0 {
				b.WriteByte(',')
			}
			if t.Base == "enum" || t.Base == "set" {
				b.WriteString("'" + strings.ReplaceAll(a, "'", "''") + "'")
			} else {
				b.WriteString(a)
			}
		}
		b.WriteByte(')')
	}
	if t.Unsigned {
		b.WriteString(" unsigned")
	}
	return b.String()
}

func argInt(t typeSpec, i, def int) int {
	if i < len(t.Args) {
		if n, err := strconv.Atoi(t.Args[i]); err == nil {
			return n
		}
	}
	return def
}

// typeOpts are the source settings that change how columns map.
type typeOpts struct {
	// tinyBool maps signed TINYINT(1) to booleans. Off by default: the (1) is only
	// a display width, the column holds -128..127, and SHOW CREATE TABLE cannot
	// tell a BOOL from a TINYINT(1) that counts things.
	tinyBool bool
}

// mapType chooses the logical type of a column (docs/design.md, the type table);
// tableCharset is the table's default character set, used when the column names none.
func mapType(c colDef, tableCharset string, opts typeOpts) colType {
	t := c.Type
	ct := colType{base: t.Base, unsigned: t.Unsigned, known: true, source: sourceTypeString(t)}
	kind := func(k record.Kind) { ct.typ = record.Type{Kind: k} }
	switch t.Base {
	case "bool", "tinyint":
		if t.Base == "bool" {
			// BOOL is TINYINT(1): the same column as SHOW CREATE TABLE shows it.
			ct.base, ct.source = "tinyint", "tinyint(1)"
			t.Args = []string{"1"}
		}
		if opts.tinyBool && argInt(t, 0, 0) == 1 && !t.Unsigned {
			kind(record.KindBool)
			ct.bool = true
		} else {
			kind(record.KindInt16)
		}
	case "uuid":
		// MariaDB 10.7+.
		kind(record.KindUUID)
	case "inet4", "inet6":
		// MariaDB 10.5+ (INET6) and 11.3+ (INET4): the address as the server prints it.
		kind(record.KindString)
	case "smallint":
		if t.Unsigned {
			kind(record.KindInt32)
		} else {
			kind(record.KindInt16)
		}
	case "mediumint":
		kind(record.KindInt32)
	case "int":
		if t.Unsigned {
			kind(record.KindInt64)
		} else {
			kind(record.KindInt32)
		}
	case "bigint", "serial":
		if t.Unsigned || t.Base == "serial" {
			kind(record.KindUint64)
		} else {
			kind(record.KindInt64)
		}
	case "float":
		// FLOAT(p) with p > 24 is a DOUBLE.
		if len(t.Args) == 1 && argInt(t, 0, 0) > 24 {
			kind(record.KindFloat64)
		} else {
			kind(record.KindFloat32)
		}
	case "double":
		kind(record.KindFloat64)
	case "decimal":
		p, s := argInt(t, 0, 10), argInt(t, 1, 0)
		ct.dec = s
		if p <= 38 {
			ct.typ = record.Type{Kind: record.KindDecimal, Precision: p, Scale: s}
		} else {
			ct.typ = record.Type{Kind: record.KindDecimalText, Scale: s}
		}
	case "bit":
		kind(record.KindString)
		ct.width = argInt(t, 0, 1)
	case "date":
		kind(record.KindDate)
	case "datetime":
		kind(record.KindTimestamp)
		ct.dec = argInt(t, 0, 0)
	case "timestamp":
		kind(record.KindTimestampTZ)
		ct.dec = argInt(t, 0, 0)
	case "time":
		// TIME spans -838:59:59 to 838:59:59, which Parquet's TIME cannot hold.
		kind(record.KindString)
		ct.dec = argInt(t, 0, 0)
	case "year":
		kind(record.KindInt16)
	case "json":
		kind(record.KindJSON)
	case "enum", "set":
		kind(record.KindString)
		ct.values = t.Args
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		cs := t.Charset
		if cs == "" {
			cs = tableCharset
		}
		switch {
		case cs == "binary":
			kind(record.KindBytes)
			if t.Base == "char" {
				ct.base = "binary"
				ct.width = argInt(t, 0, 1)
			}
		case c.JSONCheck && strings.HasSuffix(t.Base, "text"):
			kind(record.KindJSON)
		default:
			kind(record.KindString)
			var ok bool
			ct.enc, ok = charsetEncoding(cs)
			if !ok {
				ct.known = false
			}
		}
	case "binary":
		kind(record.KindBytes)
		ct.width = argInt(t, 0, 1)
	case "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection":
		kind(record.KindBytes)
	default:
		kind(record.KindString)
		ct.known = false
	}
	return ct
}

var errBadValue = errors.New("bad value")

// fromText decodes a value of the text protocol (the connection's character set is
// utf8mb4, time_zone +00:00; FLOAT columns are selected widened to DOUBLE).
func (ct *colType) fromText(raw []byte) (record.Value, warning, error) {
	s := string(raw)
	switch ct.typ.Kind {
	case record.KindBool:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, 0, err
		}
		return n != 0, boolWarn(n), nil
	case record.KindInt16:
		n, err := strconv.ParseInt(s, 10, 16)
		return int16(n), 0, err
	case record.KindInt32:
		n, err := strconv.ParseInt(s, 10, 32)
		return int32(n), 0, err
	case record.KindInt64:
		n, err := strconv.ParseInt(s, 10, 64)
		return n, 0, err
	case record.KindUint64:
		n, err := strconv.ParseUint(s, 10, 64)
		return n, 0, err
	case record.KindFloat32:
		f, err := strconv.ParseFloat(s, 64)
		return float32(f), 0, err
	case record.KindFloat64:
		f, err := strconv.ParseFloat(s, 64)
		return f, 0, err
	case record.KindDecimal, record.KindDecimalText:
		return record.Decimal(s), 0, nil
	case record.KindDate:
		return parseDate(s)
	case record.KindTimestamp, record.KindTimestampTZ:
		return parseDateTime(s)
	case record.KindJSON:
		return record.JSON(append([]byte(nil), raw...)), 0, nil
	case record.KindBytes:
		return append([]byte(nil), raw...), 0, nil
	case record.KindUUID:
		u, err := record.ParseUUID(s)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %v", errBadValue, err)
		}
		return u, 0, nil
	}
	switch ct.base {
	case "bit":
		var v uint64
		for _, b := range raw {
			v = v<<8 | uint64(b)
		}
		return bitString(v, ct.width), 0, nil
	case "time":
		return normTime(s, ct.dec)
	}
	return s, 0, nil
}

func boolWarn(n int64) warning {
	if n != 0 && n != 1 {
		return warnBool
	}
	return warnNone
}

// fromBinlog decodes a value of a rows event as go-mysql returns it (ParseTime on,
// UseDecimal off: a DECIMAL is its exact text; older settings' shapes, strings for
// datetimes and shopspring decimals, are still read).
func (ct *colType) fromBinlog(v any) (record.Value, warning, error) {
	if v == nil {
		return nil, 0, nil
	}
	switch ct.typ.Kind {
	case record.KindBool:
		n, ok := asInt(v)
		if !ok {
			return nil, 0, typeErr(ct, v)
		}
		return n != 0, boolWarn(n), nil
	case record.KindInt16, record.KindInt32, record.KindInt64, record.KindUint64:
		n, ok := asInt(v)
		if !ok {
			return nil, 0, typeErr(ct, v)
		}
		if ct.unsigned {
			// go-mysql sign-extends; the column's width says how to read it back.
			switch v.(type) {
			case int8:
				n = int64(uint8(n))
			case int16:
				n = int64(uint16(n))
			case int32:
				if ct.base == "mediumint" {
					n &= 0xffffff
				} else {
					n = int64(uint32(n))
				}
			}
		}
		switch ct.typ.Kind {
		case record.KindInt16:
			return int16(n), 0, nil
		case record.KindInt32:
			return int32(n), 0, nil
		case record.KindUint64:
			return uint64(n), 0, nil
		}
		return n, 0, nil
	case record.KindFloat32:
		switch f := v.(type) {
		case float32:
			return f, 0, nil
		case float64:
			return float32(f), 0, nil
		}
	case record.KindFloat64:
		switch f := v.(type) {
		case float32:
			return float64(f), 0, nil
		case float64:
			return f, 0, nil
		}
	case record.KindDecimal, record.KindDecimalText:
		switch d := v.(type) {
		case decimal.Decimal:
			return record.Decimal(d.StringFixed(int32(ct.dec))), 0, nil
		case string:
			return record.Decimal(d), 0, nil
		}
	case record.KindDate:
		if s, ok := v.(string); ok {
			return parseDate(s)
		}
	case record.KindTimestamp, record.KindTimestampTZ:
		switch t := v.(type) {
		case packedDatetime:
			return t.decode()
		case time.Time:
			// DATETIME is built in UTC from its fields (the wall clock), TIMESTAMP
			// from its epoch seconds: either way UnixMicro is what the string held.
			return record.TimestampOf(t), 0, nil
		case string:
			return parseDateTime(t)
		}
	case record.KindJSON:
		switch j := v.(type) {
		case string:
			if j == "" {
				return record.JSON("null"), 0, nil
			}
			return record.JSON(j), 0, nil
		case []byte:
			if len(j) == 0 {
				return record.JSON("null"), 0, nil
			}
			return record.JSON(append([]byte(nil), j...)), 0, nil
		}
	case record.KindBytes:
		var b []byte
		switch x := v.(type) {
		case string:
			b = []byte(x)
		case []byte:
			b = append([]byte(nil), x...)
		default:
			return nil, 0, typeErr(ct, v)
		}
		// The binlog drops BINARY(n)'s trailing zero bytes; the column always holds n.
		if ct.base == "binary" && len(b) < ct.width {
			b = append(b, make([]byte, ct.width-len(b))...)
		}
		return b, 0, nil
	case record.KindUUID:
		switch x := v.(type) {
		case string:
			u, err := mariaUUID([]byte(x))
			return u, 0, err
		case []byte:
			u, err := mariaUUID(x)
			return u, 0, err
		}
	}
	if ct.typ.Kind != record.KindString {
		return nil, 0, typeErr(ct, v)
	}
	switch ct.base {
	case "bit":
		n, ok := asInt(v)
		if !ok {
			return nil, 0, typeErr(ct, v)
		}
		return bitString(uint64(n), ct.width), 0, nil
	case "time":
		if s, ok := v.(string); ok {
			return normTime(s, ct.dec)
		}
		return nil, 0, typeErr(ct, v)
	case "inet4", "inet6":
		// The binlog carries the stored bytes; the snapshot reads the server's text.
		var b []byte
		switch x := v.(type) {
		case string:
			b = []byte(x)
		case []byte:
			b = x
		default:
			return nil, 0, typeErr(ct, v)
		}
		var s string
		var err error
		if ct.base == "inet4" {
			s, err = inet4Text(b)
		} else {
			s, err = inet6Text(b)
		}
		return s, 0, err
	case "enum":
		n, ok := asInt(v)
		if !ok {
			return nil, 0, typeErr(ct, v)
		}
		if n == 0 {
			return "", 0, nil // the error value '' of an invalid insert
		}
		if int(n) > len(ct.values) {
			return nil, 0, fmt.Errorf("enum index %d beyond the %d members of %s", n, len(ct.values), ct.source)
		}
		return ct.values[n-1], 0, nil
	case "set":
		n, ok := asInt(v)
		if !ok {
			return nil, 0, typeErr(ct, v)
		}
		var members []string
		for i := 0; i < len(ct.values) && i < 64; i++ {
			if uint64(n)&(1<<i) != 0 {
				members = append(members, ct.values[i])
			}
		}
		return strings.Join(members, ","), 0, nil
	}
	var raw []byte
	switch x := v.(type) {
	case string:
		raw = []byte(x)
	case []byte:
		raw = x
	default:
		if !ct.known {
			return fmt.Sprint(v), 0, nil
		}
		return nil, 0, typeErr(ct, v)
	}
	if ct.enc != nil {
		out, err := ct.enc.NewDecoder().Bytes(raw)
		if err != nil {
			return nil, 0, fmt.Errorf("decode %s text: %w", ct.source, err)
		}
		return string(out), 0, nil
	}
	if !ct.known {
		return string(raw), warnCharset, nil
	}
	return string(raw), 0, nil
}

func typeErr(ct *colType, v any) error {
	return fmt.Errorf("%w: %s column got %T from the binlog", errBadValue, ct.source, v)
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	case uint64:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint8:
		return int64(n), true
	}
	return 0, false
}

// bitString renders the low width bits of v, most significant first.
func bitString(v uint64, width int) string {
	if width <= 0 || width > 64 {
		width = 64 - bits.LeadingZeros64(v)
	}
	b := make([]byte, width)
	for i := 0; i < width; i++ {
		if v&(1<<(width-1-i)) != 0 {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
	}
	return string(b)
}

// parseDate reads YYYY-MM-DD. A zero date, or one with a zero month or day, is null.
func parseDate(s string) (record.Value, warning, error) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return nil, 0, fmt.Errorf("%w: date %q", errBadValue, s)
	}
	y, err1 := strconv.Atoi(s[0:4])
	m, err2 := strconv.Atoi(s[5:7])
	d, err3 := strconv.Atoi(s[8:10])
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, 0, fmt.Errorf("%w: date %q", errBadValue, s)
	}
	if m == 0 || d == 0 {
		return nil, warnZeroDate, nil
	}
	return record.DateOf(time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)), 0, nil
}

// parseDateTime reads YYYY-MM-DD HH:MM:SS[.ffffff] as microseconds since the epoch
// (UTC for TIMESTAMP, wall clock for DATETIME).
func parseDateTime(s string) (record.Value, warning, error) {
	if len(s) < 10 {
		return nil, 0, fmt.Errorf("%w: datetime %q", errBadValue, s)
	}
	date, w, err := parseDate(s[:10])
	if err != nil || date == nil {
		return nil, w, err
	}
	micros := int64(date.(record.Date)) * 86400 * 1e6
	rest := strings.TrimSpace(s[10:])
	if rest != "" {
		neg, us, err := parseClock(rest)
		if err != nil || neg {
			return nil, 0, fmt.Errorf("%w: datetime %q", errBadValue, s)
		}
		micros += us
	}
	return record.Timestamp(micros), 0, nil
}

// parseClock reads [-]H+:MM:SS[.ffffff] as a sign and microseconds.
func parseClock(s string) (neg bool, micros int64, err error) {
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	hms, frac, _ := strings.Cut(s, ".")
	parts := strings.Split(hms, ":")
	if len(parts) != 3 || len(frac) > 6 {
		return false, 0, fmt.Errorf("%w: time %q", errBadValue, s)
	}
	var n [3]int64
	for i, p := range parts {
		if p == "" {
			return false, 0, fmt.Errorf("%w: time %q", errBadValue, s)
		}
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v < 0 {
			return false, 0, fmt.Errorf("%w: time %q", errBadValue, s)
		}
		n[i] = v
	}
	var f int64
	if frac != "" {
		v, err := strconv.ParseInt(frac, 10, 64)
		if err != nil || v < 0 {
			return false, 0, fmt.Errorf("%w: time %q", errBadValue, s)
		}
		f = v * int64(math.Pow10(6-len(frac)))
	}
	return neg, ((n[0]*60+n[1])*60+n[2])*1e6 + f, nil
}

// normTime renders a TIME value canonically: [-]HH:MM:SS with dec fraction digits.
func normTime(s string, dec int) (record.Value, warning, error) {
	neg, us, err := parseClock(s)
	if err != nil {
		return nil, 0, err
	}
	return formatTime(neg && us != 0, us, dec), 0, nil
}

func formatTime(neg bool, us int64, dec int) string {
	sec := us / 1e6
	out := fmt.Sprintf("%02d:%02d:%02d", sec/3600, sec/60%60, sec%60)
	if neg {
		out = "-" + out
	}
	if dec > 0 {
		f := fmt.Sprintf("%06d", us%1e6)
		out += "." + f[:dec]
	}
	return out
}
