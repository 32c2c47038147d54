// Package verify proves that a destination holds what a source holds: it rebuilds a
// table's state from the destination's stored records, compares it with a consistent
// snapshot of the source key range by key range, and names the keys and columns that
// differ (docs/design.md, "Verify").
package verify

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connectd/connectd/record"
)

// AppendCanonical appends the canonical form of v, a value of type t, to dst. Two
// values of the same column have the same canonical form exactly when they are equal,
// whatever Go type width carried them (an int16 and an int64 of one number agree).
// nil (SQL NULL) appends nothing: the row form tells NULL from an empty string.
func AppendCanonical(dst []byte, t record.Type, v record.Value) []byte {
	switch x := v.(type) {
	case nil:
		return dst
	case bool:
		if x {
			return append(dst, 't')
		}
		return append(dst, 'f')
	case int, int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		out, _ := record.AppendInteger(dst, x)
		return out
	case float32:
		return appendFloat(dst, float64(x), 32)
	case float64:
		if t.Kind == record.KindFloat32 {
			return appendFloat(dst, float64(float32(x)), 32)
		}
		return appendFloat(dst, x, 64)
	case record.Decimal:
		return appendDecimal(dst, string(x))
	case string:
		switch t.Kind {
		case record.KindDecimal, record.KindDecimalText:
			return appendDecimal(dst, x)
		case record.KindJSON:
			return appendJSON(dst, []byte(x))
		case record.KindUUID:
			if u, err := record.ParseUUID(x); err == nil {
				return append(dst, u[:]...)
			}
		}
		return append(dst, x...)
	case record.JSON:
		return appendJSON(dst, x)
	case []byte:
		if t.Kind == record.KindJSON {
			return appendJSON(dst, x)
		}
		return append(dst, x...)
	case record.Date:
		return strconv.AppendInt(dst, int64(x), 10)
	case record.Time:
		return strconv.AppendInt(dst, int64(x), 10)
	case record.Timestamp:
		return strconv.AppendInt(dst, int64(x), 10)
	case time.Time:
		switch t.Kind {
		case record.KindDate:
			return strconv.AppendInt(dst, int64(record.DateOf(x)), 10)
		case record.KindTime:
			y, m, d := x.Date()
			mid := time.Date(y, m, d, 0, 0, 0, 0, x.Location())
			return strconv.AppendInt(dst, x.Sub(mid).Microseconds(), 10)
		}
		return strconv.AppendInt(dst, x.UnixMicro(), 10)
	case record.UUID:
		return append(dst, x[:]...)
	case [16]byte:
		return append(dst, x[:]...)
	case []record.Value:
		return appendList(dst, t, x)
	}
	// A Go type no kind carries: its printed form with its type, so it still compares
	// equal to itself and never to a value of a known type.
	return fmt.Appendf(dst, "\x00%T:%v", v, v)
}

// Markers of the row and list forms: one byte before each value, so that NULL, an
// empty string and a value the destination cannot know are three different things.
const (
	markNull    = 0
	markValue   = 1
	markUnknown = 2 // an unchanged column with no earlier value (destination side only)
)

func appendList(dst []byte, t record.Type, l []record.Value) []byte {
	et := record.Type{}
	if t.Elem != nil {
		et = *t.Elem
	}
	dst = binary.AppendUvarint(dst, uint64(len(l)))
	var scratch []byte
	for _, e := range l {
		if e == nil {
			dst = append(dst, markNull)
			continue
		}
		scratch = AppendCanonical(scratch[:0], et, e)
		dst = append(dst, markValue)
		dst = binary.AppendUvarint(dst, uint64(len(scratch)))
		dst = append(dst, scratch...)
	}
	return dst
}

// appendFloat keeps -0 distinct from 0: both sides carry a float's bits unchanged
// (PostgreSQL, MySQL and Parquet all store the sign of zero), so a lost sign is a real
// difference in what a reader gets back. NaN payloads are not kept by every path and
// are one token.
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-Inf"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// maxDecimalShift bounds how far an exponent may move the point before the plain form
// gives way to the exponent form, so "1e999999999" cannot ask for a gigabyte of zeros.
const maxDecimalShift = 4096

// appendDecimal appends the normalized plain form of a decimal text: no '+', no
// leading zeros before the point, no trailing zeros after it, no point when the
// fraction is empty, "0" for every zero; NaN and the infinities as fixed tokens. Text
// that is not a decimal is kept raw behind a '?' (no normalized form starts with one).
func appendDecimal(dst []byte, s string) []byte {
	switch strings.ToLower(strings.TrimPrefix(s, "+")) {
	case "nan", "-nan":
		return append(dst, "NaN"...)
	case "infinity", "inf":
		return append(dst, "Inf"...)
	case "-infinity", "-inf":
		return append(dst, "-Inf"...)
	}
	neg, digits, point, ok := parseDecimal(s)
	if !ok {
		return append(append(dst, '?'), s...)
	}
	// Strip leading zeros (the point stays where it is relative to the other digits).
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
		point--
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		return append(dst, '0')
	}
	if neg {
		dst = append(dst, '-')
	}
	if point < -maxDecimalShift || point > len(digits)+maxDecimalShift {
		// Exponent form: the digits as 0.ddd times ten to point. Plain forms have no 'E'.
		dst = append(dst, "0."...)
		dst = append(dst, digits...)
		dst = append(dst, 'E')
		return strconv.AppendInt(dst, int64(point), 10)
	}
	switch {
	case point <= 0:
		dst = append(dst, "0."...)
		for range -point {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	case point >= len(digits):
		dst = append(dst, digits...)
		for range point - len(digits) {
			dst = append(dst, '0')
		}
	default:
		dst = append(dst, digits[:point]...)
		dst = append(dst, '.')
		dst = append(dst, digits[point:]...)
	}
	return dst
}

// parseDecimal splits [+-]digits[.digits][e[+-]digits] into its sign, its digits and
// the position of the point among them.
func parseDecimal(s string) (neg bool, digits string, point int, ok bool) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart := s[start:i]
	frac := ""
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		frac = s[fs:i]
	}
	if intPart == "" && frac == "" {
		return false, "", 0, false
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		es := i
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		ds := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if ds == i || i-ds > 9 {
			return false, "", 0, false
		}
		e, err := strconv.Atoi(s[es:i])
		if err != nil {
			return false, "", 0, false
		}
		exp = e
	}
	if i != len(s) {
		return false, "", 0, false
	}
	switch {
	case frac == "":
		digits = intPart
	case intPart == "":
		digits = frac
	default:
		digits = intPart + frac
	}
	return neg, digits, len(intPart) + exp, true
}

// appendJSON appends a JSON document re-encoded compactly with object keys sorted and
// numbers as their literal text, so whitespace and key order do not matter but "1.0"
// and "1" stay apart, as jsonb keeps them. A duplicate key keeps its last value, as
// jsonb does. Text that does not parse is kept raw behind a '?' (no JSON starts so).
// It parses by hand: encoding/json's reflection cost ten allocations per document.
func appendJSON(dst []byte, text []byte) []byte {
	p := jsonCanon{in: text, out: dst}
	if p.value(0) && p.skipSpace() == len(text) {
		return p.out
	}
	return append(append(dst, '?'), text...)
}

// maxJSONDepth is encoding/json's nesting limit, kept so both reject the same documents.
const maxJSONDepth = 10000

type jsonCanon struct {
	in  []byte
	i   int
	out []byte
	tmp []byte // an object's values while they are put in key order
}

type jsonMember struct {
	key        []byte // decoded
	start, end int    // the member's canonical value in out
}

func (p *jsonCanon) skipSpace() int {
	for p.i < len(p.in) {
		switch p.in[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return p.i
		}
	}
	return p.i
}

func (p *jsonCanon) literal(word string) bool {
	if !bytes.HasPrefix(p.in[p.i:], []byte(word)) {
		return false
	}
	p.i += len(word)
	p.out = append(p.out, word...)
	return true
}

func (p *jsonCanon) value(depth int) bool {
	if depth > maxJSONDepth || p.skipSpace() == len(p.in) {
		return false
	}
	switch c := p.in[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		p.i++
		p.out = append(p.out, '[')
		if p.skipSpace() < len(p.in) && p.in[p.i] == ']' {
			p.i++
			p.out = append(p.out, ']')
			return true
		}
		for {
			if !p.value(depth + 1) {
				return false
			}
			if p.skipSpace() == len(p.in) {
				return false
			}
			switch p.in[p.i] {
			case ',':
				p.i++
				p.out = append(p.out, ',')
			case ']':
				p.i++
				p.out = append(p.out, ']')
				return true
			default:
				return false
			}
		}
	case c == '"':
		s, ok := p.str()
		if ok {
			p.out = appendJSONString(p.out, s)
		}
		return ok
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return false
}

func (p *jsonCanon) object(depth int) bool {
	p.i++
	start := len(p.out)
	var small [8]jsonMember
	members := small[:0]
	if p.skipSpace() < len(p.in) && p.in[p.i] == '}' {
		p.i++
		p.out = append(p.out, '{', '}')
		return true
	}
	for {
		if p.skipSpace() == len(p.in) || p.in[p.i] != '"' {
			return false
		}
		key, ok := p.str()
		if !ok || p.skipSpace() == len(p.in) || p.in[p.i] != ':' {
			return false
		}
		p.i++
		m := jsonMember{key: key, start: len(p.out)}
		if !p.value(depth + 1) {
			return false
		}
		m.end = len(p.out)
		members = append(members, m)
		if p.skipSpace() == len(p.in) {
			return false
		}
		if p.in[p.i] == '}' {
			p.i++
			break
		}
		if p.in[p.i] != ',' {
			return false
		}
		p.i++
	}
	// The values were written in document order; write them again in key order.
	p.tmp = append(p.tmp[:0], p.out[start:]...)
	vals := p.tmp
	p.out = append(p.out[:start], '{')
	slices.SortStableFunc(members, func(a, b jsonMember) int { return bytes.Compare(a.key, b.key) })
	first := true
	for k, m := range members {
		if k+1 < len(members) && bytes.Equal(members[k+1].key, m.key) {
			continue // the last of equal keys wins
		}
		if !first {
			p.out = append(p.out, ',')
		}
		first = false
		p.out = appendJSONString(p.out, m.key)
		p.out = append(p.out, ':')
		p.out = append(p.out, vals[m.start-start:m.end-start]...)
	}
	p.out = append(p.out, '}')
	return true
}

// str reads a string token. Plain ASCII is taken as is; anything with an escape or
// another byte goes through encoding/json, which decodes escapes and replaces invalid
// UTF-8 as its decoder always did.
func (p *jsonCanon) str() ([]byte, bool) {
	start := p.i
	p.i++
	plain := true
	for p.i < len(p.in) {
		c := p.in[p.i]
		switch {
		case c == '"':
			p.i++
			if plain {
				return p.in[start+1 : p.i-1], true
			}
			var s string
			if err := json.Unmarshal(p.in[start:p.i], &s); err != nil {
				return nil, false
			}
			return []byte(s), true
		case c == '\\':
			plain = false
			p.i += 2
		case c < 0x20:
			return nil, false
		default:
			if c >= utf8.RuneSelf {
				plain = false
			}
			p.i++
		}
	}
	return nil, false
}

// number copies a number token after checking JSON's grammar for it.
func (p *jsonCanon) number() bool {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.in) && p.in[p.i] >= '0' && p.in[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.in[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.in) && p.in[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return false
	}
	if p.i < len(p.in) && p.in[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return false
		}
	}
	if p.i < len(p.in) && (p.in[p.i] == 'e' || p.in[p.i] == 'E') {
		p.i++
		if p.i < len(p.in) && (p.in[p.i] == '+' || p.in[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return false
		}
	}
	p.out = append(p.out, p.in[start:p.i]...)
	return true
}

// appendJSONString escapes only what JSON requires, one way for each character.
func appendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			i++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(string(s[i:]))
			dst = utf8.AppendRune(dst, r)
			i += n
		}
	}
	return append(dst, '"')
}
