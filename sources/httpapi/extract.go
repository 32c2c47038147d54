package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-openapi/jsonpointer"
	"github.com/theory/jsonpath"
)

// decodeJSON decodes one JSON value with numbers kept as json.Number, so an id or an
// amount reaches the schema with all its digits; text after the value is an error.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty body")
		}
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more than one JSON value (at byte %d)", dec.InputOffset())
	}
	return v, nil
}

// jsonSelector finds values in a decoded JSON document: a JSON pointer (RFC 6901,
// "/data/items"), a JSONPath (RFC 9535, "$.data.items[*]"), or "" for the document.
type jsonSelector struct {
	text   string
	tokens []string       // the pointer's decoded tokens
	path   *jsonpath.Path // or the JSONPath
}

func newJSONSelector(s string) (*jsonSelector, error) {
	sel := &jsonSelector{text: s}
	switch {
	case s == "":
	case strings.HasPrefix(s, "/"):
		p, err := jsonpointer.New(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a JSON pointer: %v", s, err)
		}
		sel.tokens = p.DecodedTokens()
	case strings.HasPrefix(s, "$"):
		p, err := jsonpath.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a JSONPath: %v", s, err)
		}
		sel.path = p
	default:
		return nil, fmt.Errorf("%q must be a JSON pointer (/data/items) or a JSONPath ($.data.items[*])", s)
	}
	return sel, nil
}

// nodes returns what the selector finds in doc: a pointer finds one value or none (a
// missing key or index), a JSONPath any number.
func (s *jsonSelector) nodes(doc any) ([]any, error) {
	if s.path != nil {
		return s.path.Select(doc), nil
	}
	v := doc
	for i, tok := range s.tokens {
		switch c := v.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, nil
			}
			v = next
		case []any:
			n, err := strconv.Atoi(tok)
			if err != nil || strconv.Itoa(n) != tok {
				return nil, fmt.Errorf("%s: %q is not an index of the array at %s", s.text, tok, pointerPrefix(s.tokens[:i]))
			}
			if n < 0 || n >= len(c) {
				return nil, nil
			}
			v = c[n]
		case nil:
			return nil, nil
		default:
			return nil, fmt.Errorf("%s: the value at %s is %s, not an object or array", s.text, pointerPrefix(s.tokens[:i]), jsonKind(v))
		}
	}
	return []any{v}, nil
}

func pointerPrefix(tokens []string) string {
	if len(tokens) == 0 {
		return "the top"
	}
	p := ""
	for _, t := range tokens {
		p += "/" + jsonpointer.Escape(t)
	}
	return p
}

// records selects a page's records. A JSON pointer or a singular JSONPath
// ($.data.items) finds one value: an array holds the records, an object is one
// record, null or nothing found is no record (APIs that leave empty lists out of
// their responses end that way). Any other JSONPath ($.data.items[*]) finds the
// records themselves. Each record must be an object.
func (s *jsonSelector) records(doc any) ([]map[string]any, error) {
	nodes, err := s.nodes(doc)
	if err != nil {
		return nil, err
	}
	switch {
	case s.text == "":
		arr, ok := doc.([]any)
		if !ok {
			return nil, fmt.Errorf("the body is %s, not an array of records: set records to where the array is (a JSON pointer such as /data)", jsonKind(doc))
		}
		nodes = arr
	case s.singular():
		if len(nodes) == 0 {
			return nil, nil
		}
		switch v := nodes[0].(type) {
		case nil:
			return nil, nil
		case []any:
			nodes = v
		case map[string]any:
			return []map[string]any{v}, nil
		default:
			return nil, fmt.Errorf("records %s is %s, not an array or object", s.text, jsonKind(v))
		}
	}
	out := make([]map[string]any, len(nodes))
	for i, n := range nodes {
		m, ok := n.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record %d is %s, not a JSON object", i, jsonKind(n))
		}
		out[i] = m
	}
	return out, nil
}

// singular reports whether s finds at most one value.
func (s *jsonSelector) singular() bool {
	return s.path == nil || s.path.Query().Singular() != nil
}

// value returns the string (or number) the selector finds, "" when it finds nothing,
// null or "": the end of the pages.
func (s *jsonSelector) value(doc any) (string, error) {
	nodes, err := s.nodes(doc)
	if err != nil {
		return "", err
	}
	if len(nodes) > 1 {
		return "", fmt.Errorf("%s selects %d values, not one", s.text, len(nodes))
	}
	if len(nodes) == 0 {
		return "", nil
	}
	switch v := nodes[0].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	default:
		return "", fmt.Errorf("%s is %s, not a string", s.text, jsonKind(v))
	}
}

// jsonKind names a decoded JSON value's type for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}
