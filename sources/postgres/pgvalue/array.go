package pgvalue

import (
	"errors"
	"fmt"
	"strings"

	"github.com/connectd/connectd/record"
)

// maxArrayDims is Postgres' MAXDIM; deeper nesting is not a valid array literal.
const maxArrayDims = 6

var (
	errArrayStart  = errors.New("array: want '{' or dimension decoration")
	errArrayDims   = errors.New("array: invalid dimension decoration")
	errArrayDepth  = errors.New("array: too many dimensions")
	errArrayEnd    = errors.New("array: unexpected end")
	errArrayDelim  = errors.New("array: want ',' or '}'")
	errArrayTrail  = errors.New("array: junk after closing brace")
	errArrayQuote  = errors.New("array: unterminated quoted element")
	errArrayUnquot = errors.New("array: unexpected character in unquoted element")
)

// arrayParser walks an array_out literal: optional "[lb:ub]...=" decoration, braces,
// elements separated by ',', double-quoted elements with backslash escapes, and
// unquoted NULL (any case) for null elements. Each brace level becomes one list, so
// a value keeps its dimensions; it must have exactly the column's (dims).
type arrayParser struct {
	b       []byte
	i       int
	elem    *Codec
	dims    int
	n       int    // elements decoded so far, for messages
	scratch []byte // unescaped element text, reused between elements
}

func (c *Codec) decodeArray(text []byte) (record.Value, error) {
	p := arrayParser{b: text, elem: c.elem, dims: max(c.dims, 1)}
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == '[' {
		if err := p.skipDims(); err != nil {
			return nil, err
		}
	}
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return nil, errArrayStart
	}
	capacity := 4
	if p.dims == 1 {
		// Commas bound the element count; quoted commas only over-allocate.
		capacity = 1
		for _, ch := range text {
			if ch == ',' {
				capacity++
			}
		}
	}
	out, err := p.parseLevel(1, make([]record.Value, 0, capacity))
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i != len(p.b) {
		return nil, errArrayTrail
	}
	return out, nil
}

// dimsError says that the value's dimensions are not the column's. PostgreSQL does
// not enforce declared dimensions, so an int[] column may hold a two-dimensional
// value; flattening it would lose its shape without a word.
func (p *arrayParser) dimsError() error {
	n := 0
	for _, ch := range p.b {
		if ch == '{' {
			n++
		} else if ch != '[' && ch != ']' && ch != ':' && ch != '=' && ch != '-' && (ch < '0' || ch > '9') && !isArraySpace(ch) {
			break
		}
	}
	name := "<element type>"
	if p.elem != nil {
		name = p.elem.name
	}
	return fmt.Errorf("array: the value has %d dimensions, the column is declared with %d (PostgreSQL does not enforce declared dimensions): declare the column with the dimensions its values have, ALTER TABLE ... ALTER COLUMN ... TYPE %s%s, and restart",
		n, p.dims, name, strings.Repeat("[]", max(n, 1)))
}

func isArraySpace(ch byte) bool {
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f'
}

func (p *arrayParser) skipSpace() {
	for p.i < len(p.b) && isArraySpace(p.b[p.i]) {
		p.i++
	}
}

// skipDims consumes "[lb:ub][lb:ub]=": the bounds are dropped, the list keeps the order.
func (p *arrayParser) skipDims() error {
	for p.i < len(p.b) && p.b[p.i] == '[' {
		p.i++
		colons := 0
		start := p.i
		for p.i < len(p.b) && p.b[p.i] != ']' {
			ch := p.b[p.i]
			switch {
			case ch == ':':
				colons++
			case ch == '-' || ch == '+' || (ch >= '0' && ch <= '9'):
			default:
				return errArrayDims
			}
			p.i++
		}
		if p.i >= len(p.b) || p.i == start || colons > 1 {
			return errArrayDims
		}
		p.i++ // ']'
		p.skipSpace()
	}
	if p.i >= len(p.b) || p.b[p.i] != '=' {
		return errArrayDims
	}
	p.i++
	p.skipSpace()
	return nil
}

// parseLevel parses one brace level starting at '{' and appends its elements to
// out: sub-lists below the column's dimensions, values at the last one.
func (p *arrayParser) parseLevel(depth int, out []record.Value) ([]record.Value, error) {
	if depth > maxArrayDims {
		return nil, errArrayDepth
	}
	p.i++ // '{'
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return out, nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, errArrayEnd
		}
		var v record.Value
		var err error
		switch ch := p.b[p.i]; {
		case ch == '{' && depth < p.dims:
			v, err = p.parseLevel(depth+1, make([]record.Value, 0, 4))
		case ch == '{' && depth >= maxArrayDims:
			err = errArrayDepth
		case ch == '{' || depth < p.dims:
			err = p.dimsError()
		case ch == '"':
			v, err = p.parseQuoted()
		default:
			v, err = p.parseUnquoted()
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, errArrayEnd
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return out, nil
		default:
			return nil, errArrayDelim
		}
	}
}

func (p *arrayParser) parseQuoted() (record.Value, error) {
	p.i++ // opening quote
	start := p.i
	escaped := false
	for p.i < len(p.b) && p.b[p.i] != '"' {
		if p.b[p.i] == '\\' {
			escaped = true
			p.i++
		}
		p.i++
	}
	if p.i >= len(p.b) {
		return nil, errArrayQuote
	}
	raw := p.b[start:p.i]
	p.i++ // closing quote
	if escaped {
		raw = p.unescape(raw)
	}
	return p.value(raw)
}

func (p *arrayParser) parseUnquoted() (record.Value, error) {
	start := p.i
	escaped := false
	lastEscaped := -1 // index of the last byte taken literally after a backslash
	for p.i < len(p.b) {
		ch := p.b[p.i]
		if ch == ',' || ch == '}' {
			break
		}
		if ch == '{' || ch == '"' {
			return nil, errArrayUnquot
		}
		if ch == '\\' {
			if p.i+1 >= len(p.b) {
				return nil, errArrayEnd
			}
			escaped = true
			p.i++
			lastEscaped = p.i
		}
		p.i++
	}
	// Trailing white space is not part of an unquoted element, unless escaped.
	end := p.i
	for end > start && end-1 > lastEscaped && isArraySpace(p.b[end-1]) {
		end--
	}
	raw := p.b[start:end]
	if !escaped && len(raw) == 4 && (raw[0]|0x20) == 'n' && (raw[1]|0x20) == 'u' &&
		(raw[2]|0x20) == 'l' && (raw[3]|0x20) == 'l' {
		p.n++
		return nil, nil
	}
	if escaped {
		raw = p.unescape(raw)
	}
	return p.value(raw)
}

// unescape drops the backslashes of raw into the reused scratch buffer.
func (p *arrayParser) unescape(raw []byte) []byte {
	s := p.scratch[:0]
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && i+1 < len(raw) {
			i++
		}
		s = append(s, raw[i])
	}
	p.scratch = s
	return s
}

func (p *arrayParser) value(raw []byte) (record.Value, error) {
	p.n++
	v, err := p.elem.decode(nil, raw)
	if err != nil {
		return nil, fmt.Errorf("array element %d: %w", p.n, err)
	}
	return v, nil
}
