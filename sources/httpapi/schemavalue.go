package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/record"
)

// classes is a set of the classes of JSON value an inferred column has held; the
// column's type is a function of it (scalarKind), so that a column's type holds every
// value it was widened for, in whatever order they came.
type classes uint16

const (
	cBool       classes = 1 << iota
	cInt                // an integer a double holds exactly as written
	cIntWide            // an int64 a double does not hold exactly (beyond 2^53, mostly)
	cIntHuge            // an integer beyond int64
	cNumber             // a number with a fraction or an exponent, which a double holds as written
	cNumberWide         // one a double does not hold as written
	cString
	cObject
	cArray

	integers   = cInt | cIntWide | cIntHuge
	numbers    = cNumber | cNumberWide
	containers = cObject | cArray
)

// classNames are the names of the classes in the saved state, in bit order.
var classNames = []string{"boolean", "integer", "integer_beyond_double", "integer_beyond_int64",
	"number", "number_beyond_double", "string", "object", "array"}

// jsonTypes names the JSON types of the set as SourceType shows them: "integer",
// "integer|number".
func (s classes) jsonTypes() string {
	var names []string
	for _, g := range []struct {
		c    classes
		name string
	}{{cBool, "boolean"}, {integers, "integer"}, {numbers, "number"}, {cString, "string"}, {cObject, "object"}, {cArray, "array"}} {
		if s&g.c != 0 {
			names = append(names, g.name)
		}
	}
	return strings.Join(names, "|")
}

// scalarKind is the narrowest kind that holds every scalar class in s, along the
// lattice of README.md: int64 < float64 < decimal_text, and anything mixed
// with a string or a boolean with a number is a string.
func scalarKind(s classes) record.Kind {
	switch {
	case s&cString != 0 || (s&cBool != 0 && s&(integers|numbers) != 0):
		return record.KindString
	case s&cBool != 0:
		return record.KindBool
	case s&(cIntHuge|cNumberWide) != 0 || (s&cNumber != 0 && s&cIntWide != 0):
		return record.KindDecimalText
	case s&cNumber != 0:
		return record.KindFloat64
	}
	return record.KindInt64
}

// widen returns the kind of an inferred column of kind k, which has held seen, once it
// also holds cls; false when nothing holds both (a container after a scalar). A
// column of KindInvalid has not been typed yet.
func widen(k record.Kind, seen, cls classes) (record.Kind, bool) {
	switch {
	case k == record.KindJSON:
		return k, true
	case cls&containers != 0:
		return record.KindJSON, k == record.KindInvalid
	}
	return scalarKind(seen | cls), true
}

// classify returns the class of v, a value as encoding/json decodes it with UseNumber.
func classify(v any) (classes, error) {
	switch v.(type) {
	case nil:
		return 0, nil
	case bool:
		return cBool, nil
	case string:
		return cString, nil
	case map[string]any:
		return cObject, nil
	case []any:
		return cArray, nil
	}
	s, err := numberText(v)
	if err != nil {
		return 0, err
	}
	if _, _, _, _, err := splitNumber(s); err != nil {
		return 0, err
	}
	if !strings.ContainsAny(s, ".eE") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return cIntHuge, nil
		}
		if n >= -1<<53 && n <= 1<<53 || exactDouble(s) {
			return cInt, nil
		}
		return cIntWide, nil
	}
	if exactDouble(s) {
		return cNumber, nil
	}
	return cNumberWide, nil
}

// maxExponent bounds the exponent of a number kept as exact text: 1e999999999 would
// otherwise be a billion digits.
const maxExponent = 1000

// numberText is the JSON text of a number value.
func numberText(v any) (string, error) {
	switch x := v.(type) {
	case json.Number:
		if !isNumber(string(x)) {
			return "", fmt.Errorf("%q, which is not a JSON number", clip(string(x)))
		}
		return string(x), nil
	case float64: // a record decoded without UseNumber
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", fmt.Errorf("%v, which JSON cannot carry", x)
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	}
	return "", fmt.Errorf("a value of Go type %T, which JSON decoding does not produce", v)
}

// isNumber reports whether s is exactly one JSON number.
func isNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') &&
		s[len(s)-1] >= '0' && s[len(s)-1] <= '9' && json.Valid([]byte(s))
}

// splitNumber splits the JSON number s (isNumber) into sign, integer digits, fraction
// digits and exponent.
func splitNumber(s string) (neg bool, intPart, frac string, exp int, err error) {
	mant := s
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		exp, err = strconv.Atoi(s[i+1:])
		if err != nil || exp > maxExponent || exp < -maxExponent {
			return false, "", "", 0, fmt.Errorf("the number %s, whose exponent is beyond the ±%d connectd keeps exactly", clip(s), maxExponent)
		}
	}
	neg = strings.HasPrefix(mant, "-")
	intPart, frac, _ = strings.Cut(strings.TrimPrefix(mant, "-"), ".")
	return neg, intPart, frac, exp, nil
}

// significand is a number's value as 0.digits × 10^point, digits without leading or
// trailing zeros ("" for zero): two texts of one value have the same significand.
type significand struct {
	neg    bool
	digits string
	point  int
}

func significandOf(s string) (significand, bool) {
	neg, intPart, frac, exp, err := splitNumber(s)
	if err != nil {
		return significand{}, false
	}
	d := significand{neg: neg, digits: intPart + frac, point: len(intPart) + exp}
	for d.digits != "" && d.digits[0] == '0' {
		d.digits, d.point = d.digits[1:], d.point-1
	}
	d.digits = strings.TrimRight(d.digits, "0")
	if d.digits == "" {
		return significand{}, true
	}
	return d, true
}

// exactDouble reports whether the double nearest to the JSON number s, written
// shortest, is the number s denotes: whether a double keeps it without losing a digit.
func exactDouble(s string) bool {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return false
	}
	a, ok := significandOf(s)
	b, _ := significandOf(strconv.FormatFloat(f, 'e', -1, 64))
	return ok && a == b
}

// plainDecimal writes the JSON number s as record.Decimal text: no exponent, the
// scale as written ("1.50e1" is "15.0"), no sign on zero.
func plainDecimal(s string) (record.Decimal, error) {
	neg, intPart, frac, exp, err := splitNumber(s)
	if err != nil {
		return "", err
	}
	digits := intPart + frac
	point := len(intPart) + exp
	var whole, fraction string
	switch {
	case point <= 0:
		whole, fraction = "0", strings.Repeat("0", -point)+digits
	case point >= len(digits):
		whole = digits + strings.Repeat("0", point-len(digits))
	default:
		whole, fraction = digits[:point], digits[point:]
	}
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	var b strings.Builder
	if neg && strings.Trim(digits, "0") != "" {
		b.WriteByte('-')
	}
	b.WriteString(whole)
	if fraction != "" {
		b.WriteByte('.')
		b.WriteString(fraction)
	}
	return record.Decimal(b.String()), nil
}

// convert converts v, not nil, to the Go type of column c's kind, or says why it
// cannot.
func (t *Tracker) convert(c *column, v any) (record.Value, error) {
	switch c.kind {
	case record.KindBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, errors.New("want true or false")
	case record.KindInt64:
		return toInt(v, c.declared != "")
	case record.KindFloat64:
		return toFloat(v, c.declared != "")
	case record.KindDecimalText:
		return toDecimal(v, c.declared != "")
	case record.KindString:
		switch x := v.(type) {
		case string:
			return x, nil
		case bool:
			return strconv.FormatBool(x), nil
		case map[string]any, []any:
			if c.declared == "" {
				return nil, errors.New("an inferred string column holds scalars only")
			}
		default:
			return numberText(v)
		}
		text, err := t.jsonText(v)
		return string(text), err
	case record.KindJSON:
		return t.jsonText(v)
	case record.KindTimestampTZ:
		s, ok := v.(string)
		if !ok {
			return nil, errors.New("want RFC 3339 text such as 2024-05-01T12:30:00Z")
		}
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, errors.New("want RFC 3339 text such as 2024-05-01T12:30:00Z (with T and a zone)")
		}
		// Sub-microsecond digits are dropped: the lake keeps microseconds.
		return record.TimestampOf(ts), nil
	case record.KindDate:
		s, ok := v.(string)
		if !ok {
			return nil, errors.New("want a date such as 2024-05-01")
		}
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, errors.New("want a date such as 2024-05-01")
		}
		return record.DateOf(d), nil
	}
	return nil, fmt.Errorf("no conversion to %s", c.kind)
}

// toInt converts a JSON integer. A declared int also takes a number whose value is
// an integer (2.0, 1e3) and a string holding an integer, as APIs send 64-bit ids.
func toInt(v any, declared bool) (int64, error) {
	const want = "want an integer between -9223372036854775808 and 9223372036854775807"
	if s, ok := v.(string); ok && declared {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, errors.New(want)
		}
		return n, nil
	}
	s, err := numberText(v)
	if err != nil {
		return 0, errors.New(want)
	}
	if strings.ContainsAny(s, ".eE") {
		if !declared {
			return 0, errors.New(want)
		}
		d, err := plainDecimal(s)
		if err != nil {
			return 0, err
		}
		whole, frac, _ := strings.Cut(string(d), ".")
		if strings.Trim(frac, "0") != "" {
			return 0, errors.New(want)
		}
		s = whole
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New(want)
	}
	return n, nil
}

// toFloat converts a JSON number to a double. An inferred float column takes only
// numbers a double keeps as written; a declared one takes any number in a double's
// range (rounded to the nearest double) and a string holding one, or NaN or ±Infinity.
func toFloat(v any, declared bool) (float64, error) {
	s, isString := v.(string)
	if !isString {
		var err error
		if s, err = numberText(v); err != nil {
			return 0, errors.New("want a number")
		}
	} else if !declared {
		return 0, errors.New("want a number")
	}
	if !declared && !exactDouble(s) {
		return 0, fmt.Errorf("a double does not hold %s as written", clip(s))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, errors.New("beyond a double's range")
		}
		return 0, errors.New("want a number, NaN or Infinity")
	}
	return f, nil
}

// toDecimal converts a JSON number to exact decimal text. A declared decimal also
// takes a string holding a JSON number, NaN, Infinity or -Infinity.
func toDecimal(v any, declared bool) (record.Decimal, error) {
	const want = "want a number, or a string holding one"
	if s, ok := v.(string); ok {
		switch {
		case !declared:
			return "", errors.New("want a number")
		case s == "NaN" || s == "Infinity" || s == "-Infinity":
			return record.Decimal(s), nil
		case !isNumber(s):
			return "", errors.New(want)
		}
		return plainDecimal(s)
	}
	s, err := numberText(v)
	if err != nil {
		return "", errors.New(want)
	}
	return plainDecimal(s)
}

// jsonText is v's compact JSON text: object members sorted by name, numbers as
// written, <, > and & not escaped.
func (t *Tracker) jsonText(v any) (record.JSON, error) {
	t.buf.Reset()
	enc := json.NewEncoder(&t.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return record.JSON(strings.TrimSuffix(t.buf.String(), "\n")), nil
}

// describe names a class for errors: "an object".
func describe(c classes) string {
	switch {
	case c&cObject != 0:
		return "an object"
	case c&cArray != 0:
		return "an array"
	case c&cString != 0:
		return "a string"
	case c&cBool != 0:
		return "a boolean"
	case c&integers != 0:
		return "an integer"
	}
	return "a number"
}

// describeValue names a value for errors, with its text when it is a scalar.
func describeValue(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "the string " + clip(strconv.Quote(x))
	case bool:
		return strconv.FormatBool(x)
	}
	if s, err := numberText(v); err == nil {
		return "the number " + clip(s)
	}
	return fmt.Sprintf("a %T", v)
}
