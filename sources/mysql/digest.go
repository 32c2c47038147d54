package mysql

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Digests (connector.Digester, README: "Digests"): the server renders each row as the
// digest text, hashes it and sums the hashes per key-hash bucket, so verify moves
// rows only out of the buckets whose sums differ from the lake's. A column's field is
// an expression the server evaluates and Go renders alike from the value the lake
// gives back; a column type without one leaves the whole table to verify's row path.
//
// Numbers, dates and bytes (in hex) are ASCII; text goes behind its length in bytes,
// converted to utf8mb4 (so the row text is UTF-8, as Go renders it), so no value
// needs escaping and the server runs MD5 only twice per row (key and row).

var _ connector.Digester = (*verifySnapshot)(nil)

// noField is what Go renders for a value it cannot render as the server does (a
// decimal with more digits than the column's scale, a float that is not finite):
// the server never writes it, so the row's digest differs and verify compares the
// row itself.
const noField = '?'

// digestForm holds, per column, the SQL expression of its field (NULL for NULL) and
// the Go renderer of a value.
type digestForm struct {
	sql    []string
	render []func(dst []byte, v record.Value) []byte
	key    []int
}

// AppendValue appends the field of column i's value v.
func (f *digestForm) AppendValue(dst []byte, i int, v record.Value) []byte {
	return f.render[i](dst, v)
}

// DigestForm returns the table's form, or an error naming its first column without
// one; a table without a primary key has none (its rows are compared as a multiset).
func (v *verifySnapshot) DigestForm(s *record.Schema) (connector.DigestForm, error) {
	t, ts, err := v.table(s)
	if err != nil {
		return nil, err
	}
	f, err := newDigestForm(t, ts, v.src.flavor)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func newDigestForm(t tableName, ts *tableSchema, flavor string) (*digestForm, error) {
	f := &digestForm{key: ts.schema.KeyIndexes()}
	if len(f.key) == 0 {
		return nil, fmt.Errorf("mysql: digest %s: no primary key: no digest form", t)
	}
	for i, c := range ts.schema.Columns {
		sql, render, why := digestField(ts, i, flavor)
		if render == nil {
			return nil, fmt.Errorf("mysql: digest %s: column %s (%s): no digest form (%s)", t, c.Name, ts.cols[i].source, why)
		}
		f.sql = append(f.sql, sql)
		f.render = append(f.render, render)
	}
	return f, nil
}

// geometry lists the spatial types: their values are the server's internal format,
// which nothing here checks against what the binlog carries.
var geometry = map[string]bool{
	"geometry": true, "point": true, "linestring": true, "polygon": true, "multipoint": true,
	"multilinestring": true, "multipolygon": true, "geometrycollection": true, "geomcollection": true,
}

// digestField returns column i's field expression and renderer, or why it has none.
// Each expression turns the column into the value the snapshot's decoder (fromText)
// makes of it; the tests compare both sides on random values (FuzzDigestFields).
func digestField(ts *tableSchema, i int, flavor string) (string, func([]byte, record.Value) []byte, string) {
	ct := &ts.cols[i]
	c := quoteIdent(ts.schema.Columns[i].Name)
	// The character columns as UTF-8, the text the snapshot reads (the connection's
	// character set is utf8mb4), behind their length in bytes.
	u := "CONVERT(" + c + " USING utf8mb4)"
	text := "CONCAT(LENGTH(" + u + "), ':', " + u + ")"
	if !ct.known {
		return "", nil, "unmapped type or character set"
	}
	switch ct.typ.Kind {
	case record.KindBool:
		return "(" + c + " <> 0)", appendBool, ""
	// Numbers are computed on (+ 0) because a ZEROFILL column, and YEAR's 0, print
	// padded with zeros.
	case record.KindInt16, record.KindInt32, record.KindInt64, record.KindUint64:
		return "(" + c + " + 0)", appendInt, ""
	case record.KindDecimal, record.KindDecimalText:
		scale := ct.dec
		return "(" + c + " + 0)", func(dst []byte, v record.Value) []byte { return appendDecimalAt(dst, v, scale) }, ""
	case record.KindFloat32, record.KindFloat64:
		if flavor != "mariadb" {
			return "", nil, "the server's float text is proven against MariaDB's only"
		}
		if strings.Contains(ct.source, ",") {
			return "", nil, "FLOAT(M,D) and DOUBLE(M,D) print rounded to D decimals"
		}
		// A FLOAT as the scan reads it, widened to DOUBLE: the same value.
		return "(" + c + " + 0e0)", appendMariaDouble, ""
	case record.KindDate:
		// TO_DAYS counts year 0 as a common year: January and February of year 0
		// are a day later than on the proleptic Gregorian calendar.
		return "(TO_DAYS(" + c + ") - 719528 - (" + c + " < '0000-03-01'))", appendInt, ""
	case record.KindTimestamp:
		return "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', " + c + ") - 86400000000 * (" + c + " < '0000-03-01'))", appendInt, ""
	case record.KindTimestampTZ:
		// In the connection's time zone, UTC (settings.open).
		return "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', " + c + ")", appendInt, ""
	case record.KindUUID:
		// As a UUID, COALESCE(c, 'N') would read 'N' as a UUID, and NULL as ''.
		return "CAST(" + c + " AS CHAR)", appendUUID, ""
	case record.KindJSON:
		if flavor != "mariadb" {
			return "", nil, "MySQL's binary JSON prints differently from the binlog's decoding"
		}
		// MariaDB's JSON is text, kept as written by the snapshot and the stream alike.
		return text, appendFramed, ""
	case record.KindBytes:
		if geometry[ct.base] {
			return "", nil, "spatial values are not compared by digest"
		}
		return "HEX(" + c + ")", appendHex, ""
	case record.KindString:
		switch ct.base {
		case "time":
			if ct.dec > 0 && flavor != "mariadb" {
				return "", nil, "MySQL's TIME_TO_SEC drops the fraction"
			}
			// Microseconds, signed: the lake's text parses to the same number.
			return "CAST(TIME_TO_SEC(" + c + ") * 1000000 AS SIGNED)", appendClock, ""
		case "bit":
			if ct.width < 1 || ct.width > 64 {
				return "", nil, "width out of range"
			}
			return "LPAD(BIN(" + c + "), " + strconv.Itoa(ct.width) + ", '0')", appendText, ""
		case "inet4":
			return "", nil, "not tested against a server"
		}
		return text, appendFramed, ""
	}
	return "", nil, "no field form for " + ct.typ.String()
}

func appendInt(dst []byte, v record.Value) []byte {
	if out, ok := record.AppendInteger(dst, v); ok {
		return out
	}
	switch x := v.(type) {
	case record.Date:
		return strconv.AppendInt(dst, int64(x), 10)
	case record.Timestamp:
		return strconv.AppendInt(dst, int64(x), 10)
	}
	return append(dst, noField)
}

func appendBool(dst []byte, v record.Value) []byte {
	b, ok := v.(bool)
	switch {
	case !ok:
		return append(dst, noField)
	case b:
		return append(dst, '1')
	}
	return append(dst, '0')
}

func appendUUID(dst []byte, v record.Value) []byte {
	u, ok := v.(record.UUID)
	if !ok {
		return append(dst, noField)
	}
	return append(dst, u.String()...)
}

// appendFramed appends a text's or JSON's length in bytes, ':' and its bytes.
func appendFramed(dst []byte, v record.Value) []byte {
	var b []byte
	switch x := v.(type) {
	case string:
		dst = strconv.AppendInt(dst, int64(len(x)), 10)
		return append(append(dst, ':'), x...)
	case record.JSON:
		b = x
	case []byte:
		b = x
	default:
		return append(dst, noField)
	}
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	return append(append(dst, ':'), b...)
}

// appendHex appends bytes in upper-case hex, as HEX() prints them.
func appendHex(dst []byte, v record.Value) []byte {
	b, ok := v.([]byte)
	if !ok {
		return append(dst, noField)
	}
	const digits = "0123456789ABCDEF"
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&15])
	}
	return dst
}

// appendText appends a text as is (a BIT column's binary digits).
func appendText(dst []byte, v record.Value) []byte {
	s, ok := v.(string)
	if !ok {
		return append(dst, noField)
	}
	return append(dst, s...)
}

// appendClock appends a TIME column's text ([-]HH:MM:SS[.ffffff]) as signed
// microseconds.
func appendClock(dst []byte, v record.Value) []byte {
	s, ok := v.(string)
	if !ok {
		return append(dst, noField)
	}
	neg, us, err := parseClock(s)
	if err != nil {
		return append(dst, noField)
	}
	if neg {
		us = -us
	}
	return strconv.AppendInt(dst, us, 10)
}

// appendDecimalAt appends a decimal's text as the server prints a DECIMAL of the
// given scale (record.AppendDecimalAt); a value that needs more fraction digits, or
// text that is not a plain decimal, is noField: rounding it could make a different
// value match.
func appendDecimalAt(dst []byte, v record.Value, scale int) []byte {
	var s string
	switch x := v.(type) {
	case record.Decimal:
		s = string(x)
	case string:
		s = x
	default:
		return append(dst, noField)
	}
	if out, ok := record.AppendDecimalAt(dst, s, scale); ok {
		return out
	}
	return append(dst, noField)
}

// maxDecptForF is MariaDB's MAX_DECPT_FOR_F_FORMAT (DBL_DIG): how far the point may
// sit from the digits before a double prints in the 'e' form.
const maxDecptForF = 15

// appendMariaDouble appends a double as MariaDB prints a DOUBLE expression (my_gcvt
// with its full buffer as the width): the shortest digits that read back to the same
// double, in the 'f' form when the point falls at most 14 places before the first
// digit and, for |x| >= 1e15, only when there is a fraction, otherwise as d.ddde[-]N
// with no '+' and no leading zeros in the exponent. A FLOAT is read widened to DOUBLE
// (selectAll), so its value is rendered at 64 bits too. -0 renders "-0", which the
// server never prints (it stores -0 as 0): a lake's -0 is a difference.
func appendMariaDouble(dst []byte, v record.Value) []byte {
	var f float64
	switch x := v.(type) {
	case float32:
		f = float64(x)
	case float64:
		f = x
	default:
		return append(dst, noField)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, noField)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // -d.ddde±XX
	if e[0] == '-' {
		dst = append(dst, '-')
		e = e[1:]
	}
	mant, exp, _ := strings.Cut(string(e), "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	decpt := x + 1 // digits before the point
	n := len(digits)
	if decpt >= -maxDecptForF+1 && (decpt <= maxDecptForF || n > decpt) {
		switch {
		case decpt <= 0:
			dst = append(dst, "0."...)
			for range -decpt {
				dst = append(dst, '0')
			}
			return append(dst, digits...)
		case decpt < n:
			dst = append(dst, digits[:decpt]...)
			dst = append(dst, '.')
			return append(dst, digits[decpt:]...)
		}
		dst = append(dst, digits...)
		for range decpt - n {
			dst = append(dst, '0')
		}
		return dst
	}
	dst = append(dst, digits[0])
	if n > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'e')
	return strconv.AppendInt(dst, int64(x), 10)
}

// field is the SQL of column i's field in the digest text, NULL as "N" (CONCAT_WS
// would skip a NULL). Its value is text: the server's own rendering of a number, not
// a number the client formats.
func (f *digestForm) field(i int) string {
	return "COALESCE(" + f.sql[i] + ", 'N')"
}

// text is the SQL of the digest text of the columns cols: their fields joined by ','.
func (f *digestForm) text(cols []int) string {
	parts := make([]string, len(cols))
	for j, i := range cols {
		parts[j] = f.field(i)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "CONCAT_WS(',', " + strings.Join(parts, ", ") + ")"
}

func (f *digestForm) rowText() string {
	all := make([]int, len(f.sql))
	for i := range all {
		all[i] = i
	}
	return f.text(all)
}

// word is the SQL of the big-endian 32-bit word at hex digit from (1-based) of an
// MD5's hex: digits 1-8 and 9-16 are the first 8 bytes' two words.
func word(hexSQL string, from int) string {
	return "CAST(CONV(SUBSTR(" + hexSQL + ", " + strconv.Itoa(from) + ", 8), 16, 10) AS UNSIGNED)"
}

// digestWord is the SQL of a row's digest: the first 8 bytes of its MD5, big-endian.
func digestWord(hexSQL string) string {
	return "CAST(CONV(SUBSTR(" + hexSQL + ", 1, 16), 16, 10) AS UNSIGNED)"
}

// bucketSQL is the SQL of the bucket of a key hash: the top Bits bits of its first
// word.
func bucketSQL(hexSQL string, bits int) string {
	return "(" + word(hexSQL, 1) + " >> " + strconv.Itoa(32-bits) + ")"
}

// keyCondition is the condition selecting q's sample and buckets (with buckets set)
// of the key hash hexSQL; "" selects every row.
func keyCondition(hexSQL string, q connector.DigestQuery, buckets bool) string {
	var conds []string
	if q.SampleBelow != 0 {
		// The sample is decided by the key hash's low 32 bits: its second word.
		conds = append(conds, word(hexSQL, 9)+" < "+strconv.FormatUint(uint64(q.SampleBelow), 10))
	}
	if buckets {
		list := make([]string, len(q.Buckets))
		for i, b := range q.Buckets {
			list[i] = strconv.FormatUint(uint64(b), 10)
		}
		conds = append(conds, bucketSQL(hexSQL, q.Bits)+" IN ("+strings.Join(list, ", ")+")")
	}
	return strings.Join(conds, " AND ")
}

func checkQuery(t tableName, q connector.DigestQuery) error {
	if q.Bits < 1 || q.Bits > 16 {
		return fmt.Errorf("mysql: digest %s: %d bucket bits, want 1 to 16", t, q.Bits)
	}
	return nil
}

// digestQuery is the query of Digest: per bucket the row count and the sum mod 2^64
// of each row's digest (SUM of integers is an exact DECIMAL). The server merges the
// derived tables into one pass over the table, a derived column becoming its
// expression at each reference: the key hash decides the sample before the row is
// rendered, so rows outside it cost their key only, and a sampled row's text is
// rendered once.
func (f *digestForm) digestQuery(t tableName, q connector.DigestQuery) string {
	var b strings.Builder
	b.WriteString("SELECT b, COUNT(*), MOD(SUM(w), 18446744073709551616) FROM (SELECT ")
	b.WriteString(bucketSQL("k", q.Bits) + " AS b, " + digestWord("r") + " AS w")
	b.WriteString(" FROM (SELECT MD5(" + f.text(f.key) + ") AS k, MD5(" + f.rowText() + ") AS r FROM " + quoteName(t) + ") AS h")
	if w := keyCondition("k", q, len(q.Buckets) > 0); w != "" {
		b.WriteString(" WHERE " + w)
	}
	b.WriteString(") AS g GROUP BY b")
	return b.String()
}

// Digest reads the bucket sums of the table's sampled rows (of q.Buckets only, when
// it lists some) in the snapshot's transaction.
func (v *verifySnapshot) Digest(ctx context.Context, s *record.Schema, q connector.DigestQuery, fn func(connector.DigestBucket) error) error {
	t, ts, err := v.table(s)
	if err != nil {
		return err
	}
	if err := checkQuery(t, q); err != nil {
		return err
	}
	f, err := newDigestForm(t, ts, v.src.flavor)
	if err != nil {
		return err
	}
	rows, err := v.conn.QueryContext(ctx, f.digestQuery(t, q))
	if err != nil {
		return classify("digest "+t.String(), err)
	}
	defer rows.Close()
	for rows.Next() {
		var d connector.DigestBucket
		if err := rows.Scan(&d.Bucket, &d.Rows, &d.Sum); err != nil {
			return classify("digest "+t.String(), err)
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return classify("digest "+t.String(), err)
	}
	return nil
}

// ScanBuckets is Scan with the key hash's bucket and sample as its condition.
func (v *verifySnapshot) ScanBuckets(ctx context.Context, s *record.Schema, q connector.DigestQuery, fn func(row []record.Value) error) error {
	t, ts, err := v.table(s)
	if err != nil {
		return err
	}
	if err := checkQuery(t, q); err != nil {
		return err
	}
	if len(q.Buckets) == 0 {
		return nil
	}
	f, err := newDigestForm(t, ts, v.src.flavor)
	if err != nil {
		return err
	}
	return v.scan(ctx, t, ts, keyCondition("MD5("+f.text(f.key)+")", q, true), fn)
}
