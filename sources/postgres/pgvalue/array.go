package pgvalue

import (
	"errors"
	"fmt"

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
// unquoted NULL (any case) for null elements.
type arrayParser struct {
	b       []byte
	i       int
	elem    *Codec
	out     []record.Value
	scratch []byte // unescaped element text, reused between elements
}

func (c *Codec) decodeArray(text []byte) (record.Value, error) {
	p := arrayParser{b: text, elem: c.elem}
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == '[' {
		if err := p.skipDims(); err != nil {
			return nil, err
		}
	}
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return nil, errArrayStart
	}
	// Commas bound the element count; quoted commas only over-allocate.
	n := 1
	for _, ch := range text {
		if ch == ',' {
			n++
		}
	}
	p.out = make([]record.Value, 0, n)
	if err := p.parseLevel(1); err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i != len(p.b) {
		return nil, errArrayTrail
	}
	return p.out, nil
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

// parseLevel parses one brace level starting at '{'; nested levels append their elements
// in row-major order, flattening a multi-dimensional value.
func (p *arrayParser) parseLevel(depth int) error {
	if depth > maxArrayDims {
		return errArrayDepth
	}
	p.i++ // '{'
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.b) {
			return errArrayEnd
		}
		var err error
		switch p.b[p.i] {
		case '{':
			err = p.parseLevel(depth + 1)
		case '"':
			err = p.parseQuoted()
		default:
			err = p.parseUnquoted()
		}
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.i >= len(p.b) {
			return errArrayEnd
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return errArrayDelim
		}
	}
}

func (p *arrayParser) parseQuoted() error {
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
		return errArrayQuote
	}
	raw := p.b[start:p.i]
	p.i++ // closing quote
	if escaped {
		raw = p.unescape(raw)
	}
	return p.add(raw)
}

func (p *arrayParser) parseUnquoted() error {
	start := p.i
	escaped := false
	lastEscaped := -1 // index of the last byte taken literally after a backslash
	for p.i < len(p.b) {
		ch := p.b[p.i]
		if ch == ',' || ch == '}' {
			break
		}
		if ch == '{' || ch == '"' {
			return errArrayUnquot
		}
		if ch == '\\' {
			if p.i+1 >= len(p.b) {
				return errArrayEnd
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
		p.out = append(p.out, nil)
		return nil
	}
	if escaped {
		raw = p.unescape(raw)
	}
	return p.add(raw)
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

func (p *arrayParser) add(raw []byte) error {
	v, err := p.elem.decode(nil, raw)
	if err != nil {
		return fmt.Errorf("array element %d: %w", len(p.out)+1, err)
	}
	p.out = append(p.out, v)
	return nil
}
