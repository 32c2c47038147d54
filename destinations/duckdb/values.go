package duckdb

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/connectd/connectd/record"
)

// loader is how the values of one logical type reach a column through the appender:
// the type the appender is given, the SQL that turns an appended value into the
// column's type (nil: the value as appended), and the conversion of a non-null
// record value into what the appender takes. A value may be of a kind that widens
// to the column's (an int32 for a BIGINT column), as the warehouse core allows.
type loader struct {
	info duckdb.TypeInfo
	expr func(x string) string
	conv func(v record.Value) (any, error)
}

// Timestamps and times go through the appender as microseconds: its time.Time path
// cannot carry ±infinity (DuckDB's are ±(2^63-1) microseconds, which record's +infinity
// equals) nor the time 24:00:00.
const (
	duckInfinity = "9223372036854775807"
	endOfDay     = int64(86_400_000_000)
)

func timestampExpr(typ, fn string) func(string) string {
	return func(x string) string {
		return fmt.Sprintf("CASE WHEN %s = %s THEN 'infinity'::%s WHEN %s = -%s THEN '-infinity'::%s ELSE %s(%s) END",
			x, duckInfinity, typ, x, duckInfinity, typ, fn, x)
	}
}

func loaderOf(t record.Type, depth int) (loader, error) {
	simple := func(typ duckdb.Type, conv func(record.Value) (any, error)) (loader, error) {
		info, err := duckdb.NewTypeInfo(typ)
		return loader{info: info, conv: conv}, err
	}
	switch t.Kind {
	case record.KindBool:
		return simple(duckdb.TYPE_BOOLEAN, func(v record.Value) (any, error) {
			if b, ok := v.(bool); ok {
				return b, nil
			}
			return nil, mismatch(v, t)
		})
	case record.KindInt16:
		return simple(duckdb.TYPE_SMALLINT, func(v record.Value) (any, error) {
			if i, ok := v.(int16); ok {
				return i, nil
			}
			return nil, mismatch(v, t)
		})
	case record.KindInt32:
		return simple(duckdb.TYPE_INTEGER, func(v record.Value) (any, error) {
			switch i := v.(type) {
			case int16:
				return int32(i), nil
			case int32:
				return i, nil
			}
			return nil, mismatch(v, t)
		})
	case record.KindInt64:
		return simple(duckdb.TYPE_BIGINT, func(v record.Value) (any, error) {
			if i, ok := asInt64(v); ok {
				return i, nil
			}
			return nil, mismatch(v, t)
		})
	case record.KindUint64:
		return simple(duckdb.TYPE_UBIGINT, func(v record.Value) (any, error) {
			if u, ok := v.(uint64); ok {
				return u, nil
			}
			return nil, mismatch(v, t)
		})
	case record.KindFloat32:
		return simple(duckdb.TYPE_FLOAT, func(v record.Value) (any, error) {
			if f, ok := v.(float32); ok {
				return f, nil
			}
			return nil, mismatch(v, t)
		})
	case record.KindFloat64:
		return simple(duckdb.TYPE_DOUBLE, func(v record.Value) (any, error) {
			switch f := v.(type) {
			case float32:
				return float64(f), nil
			case float64:
				return f, nil
			}
			return nil, mismatch(v, t)
		})
	case record.KindDecimal:
		if t.Precision < 1 || t.Precision > 38 || t.Scale < 0 || t.Scale > t.Precision {
			return loader{}, fmt.Errorf("no DuckDB type for %s", t)
		}
		info, err := duckdb.NewDecimalInfo(uint8(t.Precision), uint8(t.Scale))
		return loader{info: info, conv: func(v record.Value) (any, error) {
			if decimalSpecial(v) {
				// A PostgreSQL numeric(p,s) may hold NaN or ±Infinity, which DECIMAL
				// cannot: the value is loaded as NULL, as the lake writes it (README,
				// "Types"), rather than stop the connector.
				return nil, nil
			}
			n, err := scaled(v, t.Precision, t.Scale)
			if err != nil {
				return nil, err
			}
			return duckdb.Decimal{Width: uint8(t.Precision), Scale: uint8(t.Scale), Value: n}, nil
		}}, err
	case record.KindDecimalText, record.KindString:
		// A decimal_text column reads back from the catalog as VARCHAR, a string
		// column: either holds text and exact decimals.
		return simple(duckdb.TYPE_VARCHAR, func(v record.Value) (any, error) {
			switch x := v.(type) {
			case string:
				return x, nil
			case record.Decimal:
				return string(x), nil
			case uint64:
				return strconv.FormatUint(x, 10), nil
			}
			if i, ok := asInt64(v); ok {
				return strconv.FormatInt(i, 10), nil
			}
			return nil, mismatch(v, t)
		})
	case record.KindBytes:
		return simple(duckdb.TYPE_BLOB, func(v record.Value) (any, error) {
			if b, ok := v.([]byte); ok {
				return b, nil
			}
			return nil, mismatch(v, t)
		})
	case record.KindDate:
		return simple(duckdb.TYPE_DATE, func(v record.Value) (any, error) {
			if d, ok := v.(record.Date); ok {
				return d.Time(), nil
			}
			return nil, mismatch(v, t)
		})
	case record.KindTime:
		l, err := simple(duckdb.TYPE_BIGINT, func(v record.Value) (any, error) {
			if x, ok := v.(record.Time); ok && x >= 0 && int64(x) <= endOfDay {
				return int64(x), nil
			}
			return nil, mismatch(v, t)
		})
		l.expr = func(x string) string {
			return fmt.Sprintf("CASE WHEN %s = %d THEN TIME '24:00:00' ELSE TIME '00:00:00' + to_microseconds(%s) END", x, endOfDay, x)
		}
		return l, err
	case record.KindTimestamp, record.KindTimestampTZ:
		typ, mk := "TIMESTAMP", "make_timestamp"
		if t.Kind == record.KindTimestampTZ {
			typ, mk = "TIMESTAMPTZ", "make_timestamptz"
		}
		l, err := simple(duckdb.TYPE_BIGINT, func(v record.Value) (any, error) {
			ts, ok := v.(record.Timestamp)
			if !ok {
				return nil, mismatch(v, t)
			}
			if ts == record.TimestampNegInfinity {
				return -int64(record.TimestampInfinity), nil
			}
			return int64(ts), nil
		})
		l.expr = timestampExpr(typ, mk)
		return l, err
	case record.KindUUID:
		return simple(duckdb.TYPE_UUID, func(v record.Value) (any, error) {
			if u, ok := v.(record.UUID); ok {
				return duckdb.UUID(u), nil
			}
			return nil, mismatch(v, t)
		})
	case record.KindJSON:
		l, err := simple(duckdb.TYPE_VARCHAR, func(v record.Value) (any, error) {
			switch j := v.(type) {
			case record.JSON:
				return string(j), nil
			case string:
				return j, nil
			}
			return nil, mismatch(v, t)
		})
		l.expr = func(x string) string { return "CAST(" + x + " AS JSON)" }
		return l, err
	case record.KindList:
		if t.Elem == nil {
			return loader{}, fmt.Errorf("a list of unknown elements has no DuckDB type")
		}
		elem, err := loaderOf(*t.Elem, depth+1)
		if err != nil {
			return loader{}, err
		}
		info, err := duckdb.NewListInfo(elem.info)
		if err != nil {
			return loader{}, err
		}
		l := loader{info: info, conv: func(v record.Value) (any, error) {
			list, ok := v.([]record.Value)
			if !ok {
				return nil, mismatch(v, t)
			}
			out := make([]any, len(list))
			for i, e := range list {
				if e == nil {
					continue
				}
				var err error
				if out[i], err = elem.conv(e); err != nil {
					return nil, fmt.Errorf("element %d: %w", i+1, err)
				}
			}
			return out, nil
		}}
		if elem.expr != nil {
			l.expr = func(x string) string {
				e := fmt.Sprintf("e%d", depth)
				return fmt.Sprintf("list_transform(%s, lambda %s: %s)", x, e, elem.expr(e))
			}
		}
		return l, nil
	}
	return loader{}, fmt.Errorf("no DuckDB type for %s", t)
}

func asInt64(v record.Value) (int64, bool) {
	switch i := v.(type) {
	case int16:
		return int64(i), true
	case int32:
		return int64(i), true
	case int64:
		return i, true
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
// more digits on either side of the point is an error: the appender would store it
// cut, not refuse it.
func scaled(v record.Value, precision, scale int) (*big.Int, error) {
	var text string
	switch x := v.(type) {
	case record.Decimal:
		text = string(x)
	case uint64:
		text = strconv.FormatUint(x, 10)
	default:
		i, ok := asInt64(v)
		if !ok {
			return nil, mismatch(v, record.Type{Kind: record.KindDecimal, Precision: precision, Scale: scale})
		}
		text = strconv.FormatInt(i, 10)
	}
	digits, neg := strings.CutPrefix(text, "-")
	whole, frac, _ := strings.Cut(digits, ".")
	if whole == "" && frac == "" || strings.Trim(whole+frac, "0123456789") != "" {
		return nil, fmt.Errorf("%q is not a decimal number (DECIMAL(%d,%d) holds no NaN or infinity)", text, precision, scale)
	}
	if len(frac) > scale {
		if strings.Trim(frac[scale:], "0") != "" {
			return nil, fmt.Errorf("%s has more than %d digits after the point of DECIMAL(%d,%d)", text, scale, precision, scale)
		}
		frac = frac[:scale]
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > precision-scale {
		return nil, fmt.Errorf("%s has more than %d digits before the point of DECIMAL(%d,%d)", text, precision-scale, precision, scale)
	}
	n, ok := new(big.Int).SetString("0"+whole+frac+strings.Repeat("0", scale-len(frac)), 10)
	if !ok {
		return nil, fmt.Errorf("%q is not a decimal number", text)
	}
	if neg {
		n.Neg(n)
	}
	return n, nil
}
