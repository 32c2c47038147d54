package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	"github.com/jackc/pgx/v5"
)

// Server digests (connector.Digester): the server renders each column into a field
// with SQL, hashes rows with md5 and sums the hashes per key bucket; fieldForm renders
// the same fields in Go from the values the lake gives back. Numbers print as decimal
// integers (dates as days, times and timestamps as microseconds, floats as their IEEE
// bits in hex), bytes in hex, and text (JSON and arrays too) behind its length, so no
// escaping is needed (README: "Verify"). A field is cheap for the server: md5 runs
// twice per row (key and row), never per column.

var _ connector.Digester = (*verifySnapshot)(nil)

// digestMinVersion is PostgreSQL 14: extract() returns an exact numeric from it on,
// and trim_scale exists.
const digestMinVersion = 140000

// fieldForm is one table's fields: a SQL expression and a Go renderer per column.
type fieldForm struct {
	kinds  []record.Type
	fields []string // SQL expression of each column's field, never NULL
}

func (v *verifySnapshot) DigestForm(s *record.Schema) (connector.DigestForm, error) {
	t, err := v.table(s)
	if err != nil {
		return nil, err
	}
	return v.fieldForm(t)
}

func (v *verifySnapshot) fieldForm(t *verifyTable) (*fieldForm, error) {
	if t.form != nil || t.formErr != nil {
		return t.form, t.formErr
	}
	t.form, t.formErr = newFieldForm(t.sh.schema, v.version, v.encoding)
	return t.form, t.formErr
}

func newFieldForm(s *record.Schema, version int, encoding string) (*fieldForm, error) {
	if version < digestMinVersion {
		return nil, fmt.Errorf("server digests need PostgreSQL 14 or later (server_version_num %d)", version)
	}
	if len(s.KeyIndexes()) == 0 {
		return nil, fmt.Errorf("table %s has no key", s.QualifiedName())
	}
	f := &fieldForm{kinds: make([]record.Type, len(s.Columns)), fields: make([]string, len(s.Columns))}
	for i, c := range s.Columns {
		x := pgx.Identifier{c.Name}.Sanitize()
		var e string
		switch c.Type.Kind {
		case record.KindBool, record.KindInt16, record.KindInt32, record.KindInt64, record.KindDecimal, record.KindUUID:
			e = x + "::text"
		case record.KindFloat32:
			e = "CASE WHEN " + x + " = 'NaN' THEN 'NaN' ELSE encode(float4send(" + x + "), 'hex') END"
		case record.KindFloat64:
			e = "CASE WHEN " + x + " = 'NaN' THEN 'NaN' ELSE encode(float8send(" + x + "), 'hex') END"
		case record.KindDecimalText:
			e = "trim_scale(" + x + ")::text"
		case record.KindString:
			if encoding != "UTF8" {
				return nil, fmt.Errorf("column %s: the server encoding is %s, not UTF8, so the server counts other bytes than the lake holds", c.Name, encoding)
			}
			// format's %s is the type's output function, as COPY prints it; a cast to
			// text is not always (char(n) drops its padding, inet shows its mask).
			// format prints NULL as '', hence the CASE.
			e = "CASE WHEN " + x + " IS NOT NULL THEN " + framed("format('%s', "+x+")") + " END"
			if c.SourceType == "text" || strings.HasPrefix(c.SourceType, "character varying") {
				e = framed(x)
			}
		case record.KindJSON:
			if encoding != "UTF8" {
				return nil, fmt.Errorf("column %s: the server encoding is %s, not UTF8", c.Name, encoding)
			}
			e = framed(x + "::text")
		case record.KindBytes:
			e = "encode(" + x + ", 'hex')"
		case record.KindDate:
			e = "CASE WHEN isfinite(" + x + ") THEN (" + x + " - DATE '1970-01-01')::text ELSE " + x + "::text END"
		case record.KindList:
			if !arrayRenders(c.Type) {
				return nil, fmt.Errorf("column %s (%s): no digest form for %s values", c.Name, c.SourceType, c.Type)
			}
			if encoding != "UTF8" {
				return nil, fmt.Errorf("column %s: the server encoding is %s, not UTF8", c.Name, encoding)
			}
			e = framed(x + "::text")
		case record.KindTime:
			e = "(extract(epoch FROM " + x + ") * 1000000)::bigint::text"
		case record.KindTimestamp, record.KindTimestampTZ:
			e = "CASE WHEN isfinite(" + x + ") THEN (extract(epoch FROM " + x + ") * 1000000)::bigint::text ELSE " + x + "::text END"
		default:
			return nil, fmt.Errorf("column %s (%s): no digest form for %s values", c.Name, c.SourceType, c.Type)
		}
		f.kinds[i] = c.Type
		f.fields[i] = "COALESCE(" + e + ", 'N')"
	}
	return f, nil
}

// framed is the SQL of a text field: its length in bytes, ':' and the text, so that
// a ',' in it cannot be taken for the next field.
func framed(text string) string {
	return "octet_length(" + text + ") || ':' || " + text
}

// text is the SQL expression of the digest text of s's columns (the key's when key).
func (f *fieldForm) text(s *record.Schema, key bool) string {
	var parts []string
	for i, c := range s.Columns {
		if key && !c.Key {
			continue
		}
		parts = append(parts, f.fields[i])
	}
	return strings.Join(parts, " || ',' || ")
}

// AppendValue renders v as the column's SQL expression does. A value it cannot render
// exactly gets "?", which no server field is, so its bucket differs and its rows are
// compared one by one.
func (f *fieldForm) AppendValue(dst []byte, i int, v record.Value) []byte {
	t := f.kinds[i]
	if out, ok := record.AppendInteger(dst, v); ok {
		return out
	}
	switch x := v.(type) {
	case bool:
		return strconv.AppendBool(dst, x)
	case float32:
		if math.IsNaN(float64(x)) {
			return append(dst, "NaN"...)
		}
		return appendHex32(dst, math.Float32bits(x))
	case float64:
		switch {
		case math.IsNaN(x):
			return append(dst, "NaN"...)
		case t.Kind == record.KindFloat32:
			return appendHex32(dst, math.Float32bits(float32(x)))
		}
		return appendHex64(dst, math.Float64bits(x))
	case record.Decimal:
		if t.Kind == record.KindDecimal {
			return appendScaled(dst, string(x), t.Scale)
		}
		return appendTrimmed(dst, string(x))
	case string:
		return appendFramed(dst, x)
	case []byte:
		return hex.AppendEncode(dst, x)
	case record.JSON:
		return appendFramed(dst, x)
	case record.Date:
		switch x {
		case math.MaxInt32:
			return append(dst, "infinity"...)
		case math.MinInt32:
			return append(dst, "-infinity"...)
		}
		return strconv.AppendInt(dst, int64(x), 10)
	case record.Time:
		return strconv.AppendInt(dst, int64(x), 10)
	case record.Timestamp:
		switch x {
		case record.TimestampInfinity:
			return append(dst, "infinity"...)
		case record.TimestampNegInfinity:
			return append(dst, "-infinity"...)
		}
		return strconv.AppendInt(dst, int64(x), 10)
	case record.UUID:
		return append(dst, x.String()...)
	case []record.Value:
		if t.Elem == nil {
			break
		}
		text, ok := appendArray(nil, *t.Elem, x)
		if !ok {
			break
		}
		return appendFramed(dst, text)
	}
	return append(dst, '?')
}

// arrayRenders reports whether appendArray renders arrays of t's elements as the
// server's array output does: elements whose text Go can print exactly.
func arrayRenders(t record.Type) bool {
	if t.Kind != record.KindList || t.Elem == nil {
		return false
	}
	switch t.Elem.Kind {
	case record.KindList:
		return arrayRenders(*t.Elem)
	case record.KindBool, record.KindInt16, record.KindInt32, record.KindInt64, record.KindString,
		record.KindUUID, record.KindDecimal, record.KindDecimalText:
		return true
	}
	return false
}

// appendArray renders a list as array_out prints it: {a,b,NULL}, nested lists as
// nested braces, an element quoted when it is empty, says NULL or holds a character
// the array syntax uses.
func appendArray(dst []byte, et record.Type, l []record.Value) ([]byte, bool) {
	dst = append(dst, '{')
	for i, e := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		switch x := e.(type) {
		case nil:
			dst, ok = append(dst, "NULL"...), true
		case []record.Value:
			if et.Kind != record.KindList || et.Elem == nil {
				return dst, false
			}
			dst, ok = appendArray(dst, *et.Elem, x)
		case bool:
			dst, ok = append(dst, "ft"[btoi(x)]), true
		case int16, int32, int64:
			dst, ok = fmt.Appendf(dst, "%d", x), true
		case record.UUID:
			dst, ok = append(dst, x.String()...), true
		case record.Decimal:
			if et.Kind == record.KindDecimal {
				dst, ok = appendScaled(dst, string(x), et.Scale), true
			} else {
				dst, ok = append(dst, x...), true
			}
		case string:
			dst, ok = appendArrayString(dst, x), true
		}
		if !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func appendArrayString(dst []byte, s string) []byte {
	quote := s == "" || strings.EqualFold(s, "NULL") || strings.ContainsAny(s, "\"{},\\ \t\n\r\v\f")
	if !quote {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

func appendHex32(dst []byte, u uint32) []byte {
	var b [4]byte
	b[0], b[1], b[2], b[3] = byte(u>>24), byte(u>>16), byte(u>>8), byte(u)
	return hex.AppendEncode(dst, b[:])
}

func appendHex64(dst []byte, u uint64) []byte {
	dst = appendHex32(dst, uint32(u>>32))
	return appendHex32(dst, uint32(u))
}

func appendFramed[S ~string | ~[]byte](dst []byte, text S) []byte {
	dst = strconv.AppendInt(dst, int64(len(text)), 10)
	dst = append(dst, ':')
	return append(dst, text...)
}

// splitDecimal splits decimal text into its sign, integer digits without leading
// zeros and fraction digits; ok is false for anything else (NaN, Infinity).
func splitDecimal(s string) (neg bool, intPart, frac string, ok bool) {
	neg = strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	intPart, frac, _ = strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return false, "", "", false
	}
	for _, d := range intPart + frac {
		if d < '0' || d > '9' {
			return false, "", "", false
		}
	}
	return neg, strings.TrimLeft(intPart, "0"), frac, true
}

// appendScaled renders a decimal with exactly scale fraction digits, as numeric(p,s)
// prints; NaN and the infinities as such; "?" when that would drop a non-zero digit.
func appendScaled(dst []byte, s string, scale int) []byte {
	if _, _, _, ok := splitDecimal(s); !ok {
		return append(dst, s...) // NaN, Infinity: printed as such
	}
	if out, ok := record.AppendDecimalAt(dst, s, scale); ok {
		return out
	}
	return append(dst, '?')
}

// appendTrimmed renders a decimal as trim_scale(x)::text prints it: no trailing
// fraction zeros, no point without a fraction.
func appendTrimmed(dst []byte, s string) []byte {
	neg, ip, frac, ok := splitDecimal(s)
	if !ok {
		return append(dst, s...)
	}
	frac = strings.TrimRight(frac, "0")
	if neg && ip+frac != "" {
		dst = append(dst, '-')
	}
	if ip == "" {
		ip = "0"
	}
	dst = append(dst, ip...)
	if frac != "" {
		dst = append(dst, '.')
		dst = append(dst, frac...)
	}
	return dst
}

// Digest sums the table's row digests per key bucket in one query.
func (v *verifySnapshot) Digest(ctx context.Context, s *record.Schema, q connector.DigestQuery, fn func(connector.DigestBucket) error) error {
	t, f, err := v.digestTable(s, q)
	if err != nil {
		return err
	}
	k := "md5(" + f.text(s, true) + ")"
	where := ""
	if q.SampleBelow > 0 {
		where = fmt.Sprintf(" WHERE %s < %d", hexWord(k, 9), q.SampleBelow)
	}
	// One level, so that no subquery scan costs a step per row; each md5 is then
	// written once per use, and each is used once per row (the key's md5 twice for a
	// sampled row). The sum of signed digests mod 2^64 is the sum of unsigned ones.
	sql := fmt.Sprintf(`SELECT (%s >> %d)::bigint, count(*), ((sum(('x' || substr(md5(%s), 1, 16))::bit(64)::bigint) %% 18446744073709551616 + 18446744073709551616) %% 18446744073709551616)::text
FROM %s%s GROUP BY 1`, hexWord(k, 1), 32-q.Bits, f.text(s, false), t.t.ident(), where)
	rows, err := v.conn.Query(ctx, sql)
	if err != nil {
		return classify("verify: digest "+t.t.qualified(), err)
	}
	defer rows.Close()
	for rows.Next() {
		var b connector.DigestBucket
		var bucket int64
		var sum string
		if err := rows.Scan(&bucket, &b.Rows, &sum); err != nil {
			return classify("verify: digest "+t.t.qualified(), err)
		}
		b.Bucket = uint32(bucket)
		if b.Sum, err = strconv.ParseUint(sum, 10, 64); err != nil {
			return fmt.Errorf("postgres: verify: digest %s: bucket sum: %w", t.t.qualified(), err)
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return classify("verify: digest "+t.t.qualified(), rows.Err())
}

// hexWord is the SQL of the unsigned 32-bit word at hex digit from (1-based) of the
// md5 text column col.
func hexWord(col string, from int) string {
	return fmt.Sprintf("('x' || substr(%s, %d, 8))::bit(32)::bigint", col, from)
}

// ScanBuckets is Scan with the key hash's bucket and sample tested by the server.
func (v *verifySnapshot) ScanBuckets(ctx context.Context, s *record.Schema, q connector.DigestQuery, fn func(row []record.Value) error) error {
	t, f, err := v.digestTable(s, q)
	if err != nil {
		return err
	}
	if len(q.Buckets) == 0 {
		return nil
	}
	list := make([]string, len(q.Buckets))
	for i, b := range q.Buckets {
		list[i] = strconv.FormatUint(uint64(b), 10)
	}
	k := "md5(" + f.text(s, true) + ")"
	where := fmt.Sprintf("(%s >> %d) IN (%s)", hexWord(k, 1), 32-q.Bits, strings.Join(list, ", "))
	if q.SampleBelow > 0 {
		where += fmt.Sprintf(" AND %s < %d", hexWord(k, 9), q.SampleBelow)
	}
	return v.scan(ctx, t, where, fn)
}

func (v *verifySnapshot) digestTable(s *record.Schema, q connector.DigestQuery) (*verifyTable, *fieldForm, error) {
	t, err := v.table(s)
	if err != nil {
		return nil, nil, err
	}
	if q.Bits < 1 || q.Bits > 16 {
		return nil, nil, fmt.Errorf("postgres: verify: digest of %s: %d bucket bits, want 1..16", t.t.qualified(), q.Bits)
	}
	f, err := v.fieldForm(t)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: verify: digest of %s: %w", t.t.qualified(), err)
	}
	return t, f, nil
}
