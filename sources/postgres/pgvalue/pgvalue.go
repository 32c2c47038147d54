// Package pgvalue maps PostgreSQL column types to record types and decodes the text form
// of values, as pgoutput sends them in text mode and as COPY ... TO STDOUT writes them
// (after UnescapeCopyText), into record values.
//
// The decoders assume the session that produced the text ran with DateStyle=ISO,
// TimeZone=UTC, IntervalStyle=iso_8601, extra_float_digits=3 and bytea_output=hex; the
// timestamptz parser still accepts any UTC offset.
//
// Documented mappings of special values:
//   - numeric NaN in a numeric(p,s) column (KindDecimal) decodes to record.Decimal("NaN");
//     the destination decides how to store it, since DECIMAL(p,s) has no NaN.
//   - numeric without typmod (KindDecimalText) keeps "NaN", "Infinity", "-Infinity".
//   - date 'infinity' / '-infinity' decode to math.MaxInt32 / math.MinInt32 days; no real
//     Postgres date reaches either (the last one is 5874897-12-31).
//   - timestamp and timestamptz ±infinity decode to record.TimestampInfinity and
//     record.TimestampNegInfinity. Finite values too large for int64 microseconds since
//     1970 (after 294247-01-10) are a decode error.
//   - BC dates and timestamps use the proleptic Gregorian calendar with astronomical year
//     numbering (1 BC is year 0), as Postgres itself computes them.
//   - time '24:00:00' decodes to 86400000000 microseconds.
//   - timetz, interval, enums, inet, cidr, macaddr, bit, varbit, money and xml are kept as
//     the text the server sent.
//   - Arrays decode to nested KindList, one level per declared dimension
//     (TypeInfo.Dims; 0, as for a column made by CREATE TABLE AS, counts as 1): an
//     int[][] value {{1,2},{3,4}} is [[1,2],[3,4]]. Postgres does not enforce declared
//     dimensions; a value with other dimensions than its column declares is a decode
//     error naming the ALTER TABLE that declares them, never flattened. The empty
//     array {} is an empty list whatever the dimensions. Non-default lower bounds
//     ("[0:2]={1,2,3}") are dropped.
package pgvalue

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/connectd/connectd/record"
)

// Built-in type OIDs (pg_type.dat); they are fixed across server versions.
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt2Vector  = 22
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidOIDVector   = 30
	oidJSON        = 114
	oidXML         = 142
	oidCIDR        = 650
	oidFloat4      = 700
	oidFloat8      = 701
	oidMacaddr8    = 774
	oidMoney       = 790
	oidMacaddr     = 829
	oidInet        = 869
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
	oidInterval    = 1186
	oidTimeTZ      = 1266
	oidBit         = 1560
	oidVarbit      = 1562
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// maxDecimalPrecision is the largest precision a Parquet DECIMAL (and record.KindDecimal) holds.
const maxDecimalPrecision = 38

// maxDomainDepth bounds the walk through domains and array elements, so a cyclic
// TypeInfo built by mistake cannot loop forever.
const maxDomainDepth = 32

// TypeInfo is a column type as the catalog describes it.
type TypeInfo struct {
	OID      uint32
	Name     string    // format_type(oid, typmod), e.g. "numeric(10,2)", "integer[]", "mood"
	Typmod   int32     // atttypmod (-1 when none)
	Type     byte      // pg_type.typtype: 'b' base, 'e' enum, 'd' domain, 'c' composite, 'r' range, 'm' multirange, 'p' pseudo
	Category byte      // pg_type.typcategory ('A' array, 'N', 'S', ...)
	Elem     *TypeInfo // for arrays: the element type (typelem), with the column's typmod
	Base     *TypeInfo // for domains: the base type (typbasetype with typtypmod)
	// Dims is pg_attribute.attndims, the declared number of array dimensions (0 when
	// unknown or not an array). A column declared int[][] (Dims 2) is a list of lists.
	Dims int
}

type decodeOp uint8

const (
	opText decodeOp = iota // KindString, a copy of the text
	opBool
	opInt16
	opInt32
	opInt64
	opFloat32
	opFloat64
	opDecimal
	opBytes
	opDate
	opTime
	opTimestamp
	opTimestampTZ
	opUUID
	opJSON
	opArray
)

// Codec decodes one column's text values. It is immutable and safe for concurrent use.
type Codec struct {
	name  string
	typ   record.Type
	op    decodeOp
	elem  *Codec
	dims  int // arrays: the dimensions of every value, each one a level of lists
	known bool
}

// NewCodec maps a column type. known is false when the type has no mapping: the codec then
// returns the text form as a string (KindString) and the caller warns once per column.
func NewCodec(t TypeInfo) (c *Codec, known bool) {
	c = newCodec(&t, t.Name, 0)
	return c, c.known
}

func newCodec(t *TypeInfo, name string, depth int) *Codec {
	c := &Codec{name: name, typ: record.Type{Kind: record.KindString}, op: opText}
	if name == "" {
		c.name = "oid " + strconv.FormatUint(uint64(t.OID), 10)
	}
	u := t
	for u.Type == 'd' {
		if u.Base == nil || depth >= maxDomainDepth {
			return c // a domain we cannot see through: text, unknown
		}
		u = u.Base
		depth++
	}
	switch {
	case u.Type == 'e':
		c.known = true
		return c
	case u.Category == 'A' && u.Elem != nil && u.OID != oidInt2Vector && u.OID != oidOIDVector:
		// int2vector and oidvector claim category 'A' but print space-separated lists.
		if t.Dims > maxArrayDims || depth >= maxDomainDepth {
			return c
		}
		ec := newCodec(u.Elem, u.Elem.Name, depth+1)
		if !ec.known {
			return c
		}
		c.op, c.elem, c.known, c.dims = opArray, ec, true, max(t.Dims, 1)
		c.typ = ec.typ
		for range c.dims {
			et := c.typ
			c.typ = record.Type{Kind: record.KindList, Elem: &et}
		}
		return c
	case u.Type != 'b':
		return c // composite, range, multirange, pseudo: text, unknown
	}
	c.known = true
	switch u.OID {
	case oidBool:
		c.op, c.typ.Kind = opBool, record.KindBool
	case oidInt2:
		c.op, c.typ.Kind = opInt16, record.KindInt16
	case oidInt4:
		c.op, c.typ.Kind = opInt32, record.KindInt32
	case oidInt8, oidOID:
		c.op, c.typ.Kind = opInt64, record.KindInt64
	case oidFloat4:
		c.op, c.typ.Kind = opFloat32, record.KindFloat32
	case oidFloat8:
		c.op, c.typ.Kind = opFloat64, record.KindFloat64
	case oidNumeric:
		c.op, c.typ = opDecimal, numericType(u.Typmod)
	case oidBytea:
		c.op, c.typ.Kind = opBytes, record.KindBytes
	case oidDate:
		c.op, c.typ.Kind = opDate, record.KindDate
	case oidTime:
		c.op, c.typ.Kind = opTime, record.KindTime
	case oidTimestamp:
		c.op, c.typ.Kind = opTimestamp, record.KindTimestamp
	case oidTimestampTZ:
		c.op, c.typ.Kind = opTimestampTZ, record.KindTimestampTZ
	case oidUUID:
		c.op, c.typ.Kind = opUUID, record.KindUUID
	case oidJSON, oidJSONB:
		c.op, c.typ.Kind = opJSON, record.KindJSON
	case oidText, oidVarchar, oidBPChar, oidName, oidChar, oidTimeTZ, oidInterval,
		oidInet, oidCIDR, oidMacaddr, oidMacaddr8, oidBit, oidVarbit, oidMoney, oidXML:
		// kept as the server's text
	default:
		// Extension string types (citext, ...) are category 'S' and print as plain text.
		c.known = u.Category == 'S'
	}
	return c
}

// numericType decodes a numeric typmod: ((p << 16) | s) + 4, where s is a signed 16-bit
// field since PG15 allows negative scales.
func numericType(typmod int32) record.Type {
	if typmod < 4 {
		return record.Type{Kind: record.KindDecimalText, Scale: -1}
	}
	p := int((typmod - 4) >> 16 & 0xffff)
	s := int(int16((typmod - 4) & 0xffff))
	if p < 1 || p > maxDecimalPrecision || s < 0 || s > p {
		if s < 0 {
			s = -1
		}
		return record.Type{Kind: record.KindDecimalText, Scale: s}
	}
	return record.Type{Kind: record.KindDecimal, Precision: p, Scale: s}
}

// Type returns the logical type values of this column decode to.
func (c *Codec) Type() record.Type { return c.typ }

// Known reports whether the column type has a mapping (the second result of NewCodec).
func (c *Codec) Known() bool { return c.known }

// Decode turns one non-NULL text value into the Go type of c.Type().Kind. It does not
// retain text.
func (c *Codec) Decode(text []byte) (record.Value, error) {
	return c.DecodeWith(nil, text)
}

// DecodeWith is Decode with the value (and a copy of its text, for text kinds) taken
// from a: the snapshot and stream decoders use it so that a row costs no heap
// allocation per value. a may be nil (Decode).
func (c *Codec) DecodeWith(a *Alloc, text []byte) (record.Value, error) {
	v, err := c.decode(a, text)
	if err != nil {
		return nil, c.wrap(text, err)
	}
	return v, nil
}

func (c *Codec) wrap(text []byte, err error) error {
	const max = 64
	shown := string(text)
	if len(shown) > max {
		shown = shown[:max] + "..."
	}
	return fmt.Errorf("pgvalue: decode %s %q: %w", c.name, shown, err)
}

var (
	errSyntax   = errors.New("invalid syntax")
	errRange    = errors.New("value out of range")
	errBool     = errors.New("want t or f")
	errUUID     = errors.New("want 8-4-4-4-12 hex digits")
	errNumeric  = errors.New("want [-]digits[.digits], NaN or [-]Infinity")
	errHex      = errors.New("invalid hex digit")
	errByteaEsc = errors.New("invalid bytea escape")
)

// decode returns (nil, err) on error; a is nil or the caller's block allocator.
func (c *Codec) decode(a *Alloc, text []byte) (record.Value, error) {
	switch c.op {
	case opText:
		return a.stringOf(text), nil
	case opBool:
		b, err := parseBool(text)
		if err != nil {
			return nil, err
		}
		return b, nil
	case opInt16:
		n, err := parseInt(text, math.MinInt16, math.MaxInt16)
		if err != nil {
			return nil, err
		}
		return a.int16Of(int16(n)), nil
	case opInt32:
		n, err := parseInt(text, math.MinInt32, math.MaxInt32)
		if err != nil {
			return nil, err
		}
		return a.int32Of(int32(n)), nil
	case opInt64:
		n, err := parseInt(text, math.MinInt64, math.MaxInt64)
		if err != nil {
			return nil, err
		}
		return a.int64Of(n), nil
	case opFloat32:
		f, err := parseFloat(text, 32)
		if err != nil {
			return nil, err
		}
		return a.float32Of(float32(f)), nil
	case opFloat64:
		f, err := parseFloat(text, 64)
		if err != nil {
			return nil, err
		}
		return a.float64Of(f), nil
	case opDecimal:
		if !validNumeric(text) {
			return nil, errNumeric
		}
		return a.decimalOf(text), nil
	case opBytes:
		b, err := parseBytea(text)
		if err != nil {
			return nil, err
		}
		return a.bytesOf(b), nil
	case opDate:
		d, err := parseDate(text)
		if err != nil {
			return nil, err
		}
		return a.dateOf(d), nil
	case opTime:
		t, err := parseTime(text)
		if err != nil {
			return nil, err
		}
		return a.timeOf(t), nil
	case opTimestamp, opTimestampTZ:
		ts, err := parseTimestamp(text, c.op == opTimestampTZ)
		if err != nil {
			return nil, err
		}
		return a.timestampOf(ts), nil
	case opUUID:
		u, err := parseUUID(text)
		if err != nil {
			return nil, err
		}
		return a.uuidOf(u), nil
	case opJSON:
		return a.jsonOf(text), nil
	case opArray:
		return c.decodeArray(text)
	}
	return nil, errors.New("no decoder")
}

func parseBool(b []byte) (bool, error) {
	switch string(b) {
	case "t", "true":
		return true, nil
	case "f", "false":
		return false, nil
	}
	return false, errBool
}

// parseInt parses a decimal integer in [min, max] without allocating.
func parseInt(b []byte, min, max int64) (int64, error) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i = 1
	}
	if i == len(b) {
		return 0, errSyntax
	}
	limit := uint64(max)
	if neg {
		limit = uint64(-(min + 1)) + 1
	}
	var n uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			return 0, errSyntax
		}
		if n > (limit-uint64(d))/10 {
			return 0, errRange
		}
		n = n*10 + uint64(d)
	}
	if neg {
		return -int64(n-1) - 1, nil
	}
	return int64(n), nil
}

// parseFloat hands strconv a string that aliases b; strconv's error, which would keep
// that string, is replaced so b is never retained.
func parseFloat(b []byte, bits int) (float64, error) {
	if len(b) == 0 {
		return 0, errSyntax
	}
	f, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), bits)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, errRange
		}
		return 0, errSyntax
	}
	return f, nil
}

// validNumeric accepts numeric_out's forms: [-]digits[.digits], NaN, Infinity, -Infinity.
func validNumeric(b []byte) bool {
	switch string(b) {
	case "NaN", "Infinity", "-Infinity":
		return true
	}
	i := 0
	if len(b) > 0 && b[0] == '-' {
		i = 1
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == start {
		return false
	}
	if i == len(b) {
		return true
	}
	if b[i] != '.' {
		return false
	}
	i++
	start = i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i > start && i == len(b)
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// hexVal maps a byte to its hex digit value, or 0xff.
var hexVal = func() (t [256]byte) {
	for i := range t {
		if v, ok := unhex(byte(i)); ok {
			t[i] = v
		} else {
			t[i] = 0xff
		}
	}
	return t
}()

// uuidDigits are the offsets of the 16 hex digit pairs in 8-4-4-4-12 form.
var uuidDigits = [16]uint8{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

func parseUUID(b []byte) (record.UUID, error) {
	var u record.UUID
	if len(b) != 36 || b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return u, errUUID
	}
	var bad byte
	for j, i := range uuidDigits {
		hi, lo := hexVal[b[i]], hexVal[b[i+1]]
		bad |= hi | lo
		u[j] = hi<<4 | lo&0x0f
	}
	if bad&0xf0 != 0 {
		return record.UUID{}, errUUID
	}
	return u, nil
}

// parseBytea decodes the hex format ("\x0a0b"); the escape format is accepted too in
// case a session ran with bytea_output=escape.
func parseBytea(b []byte) ([]byte, error) {
	if len(b) >= 2 && b[0] == '\\' && b[1] == 'x' {
		h := b[2:]
		if len(h)%2 != 0 {
			return nil, errHex
		}
		out := make([]byte, len(h)/2)
		for i := range out {
			hi, ok1 := unhex(h[2*i])
			lo, ok2 := unhex(h[2*i+1])
			if !ok1 || !ok2 {
				return nil, errHex
			}
			out[i] = hi<<4 | lo
		}
		return out, nil
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			out = append(out, b[i])
			continue
		}
		if i+1 < len(b) && b[i+1] == '\\' {
			out = append(out, '\\')
			i++
			continue
		}
		if i+3 < len(b) && isOctal(b[i+1]) && isOctal(b[i+2]) && isOctal(b[i+3]) && b[i+1] <= '3' {
			out = append(out, (b[i+1]-'0')<<6|(b[i+2]-'0')<<3|(b[i+3]-'0'))
			i += 3
			continue
		}
		return nil, errByteaEsc
	}
	return out, nil
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
