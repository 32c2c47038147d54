package duckdb

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"

	"github.com/connectd/connectd/record"
)

// column is how the values of one logical type reach DuckDB as an Arrow column: the
// Arrow type DuckDB reads as the target column's type, the SQL that turns what it
// read into that type where it differs (nil: as read), and add, which appends a
// non-null record value to a builder of the Arrow type. A value may be of a kind
// that widens to the column's (an int32 for a BIGINT column), as the warehouse core
// allows.
type column struct {
	typ  arrow.DataType
	expr func(x string) string
	add  func(b array.Builder, v record.Value) error
	// text is set for the columns of variable width, whose builders are given the
	// size of a batch's bytes up front instead of growing (and copying) as they fill.
	text bool
}

// textSize is the bytes a value takes in a column of variable width; a guess for the
// kinds written as their decimal text.
func textSize(v record.Value) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []byte:
		return len(x)
	case record.JSON:
		return len(x)
	case record.Decimal:
		return len(x)
	}
	return 20
}

// duckNegInfinity is DuckDB's -infinity timestamp, -(2^63-1) microseconds; its
// +infinity, 2^63-1, equals record's. Arrow timestamps reach DuckDB unchanged, so
// record's -infinity (-2^63) is moved onto DuckDB's.
const duckNegInfinity = -math.MaxInt64

func columnOf(t record.Type, depth int) (column, error) {
	switch t.Kind {
	case record.KindBool:
		return column{typ: arrow.FixedWidthTypes.Boolean, add: func(b array.Builder, v record.Value) error {
			x, ok := v.(bool)
			if !ok {
				return mismatch(v, t)
			}
			b.(*array.BooleanBuilder).Append(x)
			return nil
		}}, nil
	case record.KindInt16:
		return column{typ: arrow.PrimitiveTypes.Int16, add: func(b array.Builder, v record.Value) error {
			x, ok := v.(int16)
			if !ok {
				return mismatch(v, t)
			}
			b.(*array.Int16Builder).Append(x)
			return nil
		}}, nil
	case record.KindInt32:
		return column{typ: arrow.PrimitiveTypes.Int32, add: func(b array.Builder, v record.Value) error {
			switch x := v.(type) {
			case int32:
				b.(*array.Int32Builder).Append(x)
			case int16:
				b.(*array.Int32Builder).Append(int32(x))
			default:
				return mismatch(v, t)
			}
			return nil
		}}, nil
	case record.KindInt64:
		return column{typ: arrow.PrimitiveTypes.Int64, add: func(b array.Builder, v record.Value) error {
			x, ok := asInt64(v)
			if !ok {
				return mismatch(v, t)
			}
			b.(*array.Int64Builder).Append(x)
			return nil
		}}, nil
	case record.KindUint64:
		return column{typ: arrow.PrimitiveTypes.Uint64, add: func(b array.Builder, v record.Value) error {
			x, ok := v.(uint64)
			if !ok {
				return mismatch(v, t)
			}
			b.(*array.Uint64Builder).Append(x)
			return nil
		}}, nil
	case record.KindFloat32:
		return column{typ: arrow.PrimitiveTypes.Float32, add: func(b array.Builder, v record.Value) error {
			x, ok := v.(float32)
			if !ok {
				return mismatch(v, t)
			}
			b.(*array.Float32Builder).Append(x)
			return nil
		}}, nil
	case record.KindFloat64:
		return column{typ: arrow.PrimitiveTypes.Float64, add: func(b array.Builder, v record.Value) error {
			switch x := v.(type) {
			case float64:
				b.(*array.Float64Builder).Append(x)
			case float32:
				b.(*array.Float64Builder).Append(float64(x))
			default:
				return mismatch(v, t)
			}
			return nil
		}}, nil
	case record.KindDecimal:
		if t.Precision < 1 || t.Precision > 38 || t.Scale < 0 || t.Scale > t.Precision {
			return column{}, fmt.Errorf("no DuckDB type for %s", t)
		}
		return column{typ: &arrow.Decimal128Type{Precision: int32(t.Precision), Scale: int32(t.Scale)}, add: func(b array.Builder, v record.Value) error {
			if decimalSpecial(v) {
				// A PostgreSQL numeric(p,s) may hold NaN or ±Infinity, which DECIMAL
				// cannot: the value is loaded as NULL, as the lake writes it (README,
				// "Types"), rather than stop the connector.
				b.AppendNull()
				return nil
			}
			n, err := scaled(v, t.Precision, t.Scale)
			if err != nil {
				return err
			}
			b.(*array.Decimal128Builder).Append(n)
			return nil
		}}, nil
	case record.KindDecimalText, record.KindString:
		// A decimal_text column reads back from the catalog as VARCHAR, a string
		// column: either holds text and exact decimals. Large strings: a batch's text
		// may pass the 2 GiB that 32-bit offsets address.
		return column{typ: arrow.BinaryTypes.LargeString, text: true, add: func(b array.Builder, v record.Value) error {
			sb := b.(*array.LargeStringBuilder)
			switch x := v.(type) {
			case string:
				sb.Append(x)
			case record.Decimal:
				sb.Append(string(x))
			case uint64:
				sb.Append(strconv.FormatUint(x, 10))
			default:
				i, ok := asInt64(v)
				if !ok {
					return mismatch(v, t)
				}
				sb.Append(strconv.FormatInt(i, 10))
			}
			return nil
		}}, nil
	case record.KindBytes:
		return column{typ: arrow.BinaryTypes.LargeBinary, text: true, add: func(b array.Builder, v record.Value) error {
			x, ok := v.([]byte)
			if !ok {
				return mismatch(v, t)
			}
			b.(*array.BinaryBuilder).Append(x)
			return nil
		}}, nil
	case record.KindDate:
		return column{typ: arrow.FixedWidthTypes.Date32, add: func(b array.Builder, v record.Value) error {
			x, ok := v.(record.Date)
			if !ok {
				return mismatch(v, t)
			}
			b.(*array.Date32Builder).Append(arrow.Date32(x))
			return nil
		}}, nil
	case record.KindTime:
		return column{typ: arrow.FixedWidthTypes.Time64us, add: func(b array.Builder, v record.Value) error {
			x, ok := v.(record.Time)
			if !ok || x < 0 || x > endOfDay {
				return mismatch(v, t)
			}
			b.(*array.Time64Builder).Append(arrow.Time64(x))
			return nil
		}}, nil
	case record.KindTimestamp, record.KindTimestampTZ:
		typ := arrow.FixedWidthTypes.Timestamp_us
		if t.Kind == record.KindTimestamp {
			typ = &arrow.TimestampType{Unit: arrow.Microsecond}
		}
		return column{typ: typ, add: func(b array.Builder, v record.Value) error {
			ts, ok := v.(record.Timestamp)
			if !ok {
				return mismatch(v, t)
			}
			if ts == record.TimestampNegInfinity {
				ts = duckNegInfinity
			}
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
			return nil
		}}, nil
	case record.KindUUID:
		// Arrow's canonical uuid extension type, which DuckDB reads as UUID.
		return column{typ: extensions.NewUUIDType(), add: func(b array.Builder, v record.Value) error {
			u, ok := v.(record.UUID)
			if !ok {
				return mismatch(v, t)
			}
			b.(*extensions.UUIDBuilder).AppendBytes(u)
			return nil
		}}, nil
	case record.KindJSON:
		// As text, cast in SQL: the cast checks that it is JSON.
		return column{typ: arrow.BinaryTypes.LargeString, text: true, expr: func(x string) string { return "CAST(" + x + " AS JSON)" },
			add: func(b array.Builder, v record.Value) error {
				switch j := v.(type) {
				case record.JSON:
					b.(*array.LargeStringBuilder).Append(string(j))
				case string:
					b.(*array.LargeStringBuilder).Append(j)
				default:
					return mismatch(v, t)
				}
				return nil
			}}, nil
	case record.KindList:
		if t.Elem == nil {
			return column{}, fmt.Errorf("a list of unknown elements has no DuckDB type")
		}
		elem, err := columnOf(*t.Elem, depth+1)
		if err != nil {
			return column{}, err
		}
		c := column{typ: arrow.LargeListOf(elem.typ), add: func(b array.Builder, v record.Value) error {
			list, ok := v.([]record.Value)
			if !ok {
				return mismatch(v, t)
			}
			lb := b.(*array.LargeListBuilder)
			lb.Append(true)
			eb := lb.ValueBuilder()
			for i, e := range list {
				if e == nil {
					eb.AppendNull()
					continue
				}
				if err := elem.add(eb, e); err != nil {
					return fmt.Errorf("element %d: %w", i+1, err)
				}
			}
			return nil
		}}
		if elem.expr != nil {
			c.expr = func(x string) string {
				e := fmt.Sprintf("e%d", depth)
				return fmt.Sprintf("list_transform(%s, lambda %s: %s)", x, e, elem.expr(e))
			}
		}
		return c, nil
	}
	return column{}, fmt.Errorf("no DuckDB type for %s", t)
}

// endOfDay is the time 24:00:00 in microseconds, which PostgreSQL's and DuckDB's
// TIME both hold.
const endOfDay = record.Time(86_400_000_000)

func asInt64(v record.Value) (int64, bool) {
	switch i := v.(type) {
	case int64:
		return i, true
	case int32:
		return int64(i), true
	case int16:
		return int64(i), true
	}
	return 0, false
}

func mismatch(v record.Value, t record.Type) error {
	return fmt.Errorf("a %T value (%v) in a %s column", v, v, t)
}

// decimalSpecial reports whether v is decimal text for NaN or an infinity.
func decimalSpecial(v record.Value) bool {
	d, ok := v.(record.Decimal)
	if !ok {
		return false
	}
	switch strings.ToLower(strings.TrimLeft(string(d), "+-")) {
	case "nan", "inf", "infinity":
		return true
	}
	return false
}

// scaled returns a decimal or integer value as the unscaled integer of a
// DECIMAL(precision, scale): "-12.5" in DECIMAL(5,2) is -1250. A value that needs
// more digits on either side of the point is an error: DuckDB would read the
// unscaled integer as it is, not refuse it.
func scaled(v record.Value, precision, scale int) (decimal128.Num, error) {
	var text string
	switch x := v.(type) {
	case record.Decimal:
		text = string(x)
	case uint64:
		text = strconv.FormatUint(x, 10)
	default:
		i, ok := asInt64(v)
		if !ok {
			return decimal128.Num{}, mismatch(v, record.Type{Kind: record.KindDecimal, Precision: precision, Scale: scale})
		}
		text = strconv.FormatInt(i, 10)
	}
	digits, neg := strings.CutPrefix(text, "-")
	whole, frac, _ := strings.Cut(digits, ".")
	if whole == "" && frac == "" || !allDigits(whole) || !allDigits(frac) {
		return decimal128.Num{}, fmt.Errorf("%q is not a decimal number (DECIMAL(%d,%d) holds no NaN or infinity)", text, precision, scale)
	}
	if len(frac) > scale {
		if strings.Trim(frac[scale:], "0") != "" {
			return decimal128.Num{}, fmt.Errorf("%s has more than %d digits after the point of DECIMAL(%d,%d)", text, scale, precision, scale)
		}
		frac = frac[:scale]
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > precision-scale {
		return decimal128.Num{}, fmt.Errorf("%s has more than %d digits before the point of DECIMAL(%d,%d)", text, precision-scale, precision, scale)
	}
	// At most 38 digits: the unscaled integer fits 127 bits, accumulated in two
	// words without allocating.
	var hi, lo uint64
	push := func(d uint64) {
		h, l := bits.Mul64(lo, 10)
		var carry uint64
		lo, carry = bits.Add64(l, d, 0)
		hi = hi*10 + h + carry
	}
	for i := 0; i < len(whole); i++ {
		push(uint64(whole[i] - '0'))
	}
	for i := 0; i < len(frac); i++ {
		push(uint64(frac[i] - '0'))
	}
	for range scale - len(frac) {
		push(0)
	}
	n := decimal128.New(int64(hi), lo)
	if neg {
		n = n.Negate()
	}
	return n, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
