package pgvalue

import (
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/record"
)

func base(oid uint32, name string) TypeInfo {
	return TypeInfo{OID: oid, Name: name, Typmod: -1, Type: 'b', Category: 'U'}
}

func arrayOf(e TypeInfo) TypeInfo {
	return TypeInfo{OID: 1, Name: e.Name + "[]", Typmod: e.Typmod, Type: 'b', Category: 'A', Elem: &e}
}

func numericOf(p, s int) TypeInfo {
	t := base(oidNumeric, "numeric")
	t.Typmod = int32(p<<16|s&0xffff) + 4
	return t
}

func domainOf(name string, b TypeInfo) TypeInfo {
	return TypeInfo{OID: 99999, Name: name, Typmod: -1, Type: 'd', Category: b.Category, Base: &b}
}

var (
	tiBool        = base(oidBool, "boolean")
	tiInt2        = base(oidInt2, "smallint")
	tiInt4        = base(oidInt4, "integer")
	tiInt8        = base(oidInt8, "bigint")
	tiOID         = base(oidOID, "oid")
	tiFloat4      = base(oidFloat4, "real")
	tiFloat8      = base(oidFloat8, "double precision")
	tiNumeric     = base(oidNumeric, "numeric")
	tiText        = base(oidText, "text")
	tiBytea       = base(oidBytea, "bytea")
	tiDate        = base(oidDate, "date")
	tiTime        = base(oidTime, "time without time zone")
	tiTimeTZ      = base(oidTimeTZ, "time with time zone")
	tiTimestamp   = base(oidTimestamp, "timestamp without time zone")
	tiTimestampTZ = base(oidTimestampTZ, "timestamp with time zone")
	tiInterval    = base(oidInterval, "interval")
	tiUUID        = base(oidUUID, "uuid")
	tiJSONB       = base(oidJSONB, "jsonb")
)

func dateOf(y, m, d int) record.Date {
	return record.Date(time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func tsOf(y, m, d, hh, mm, ss, us int, off int) record.Timestamp {
	t := time.Date(y, time.Month(m), d, hh, mm, ss, us*1000, time.FixedZone("", off))
	return record.Timestamp(t.UnixMicro())
}

func TestNewCodecMapsTypes(t *testing.T) {
	enum := TypeInfo{OID: 50000, Name: "mood", Typmod: -1, Type: 'e', Category: 'E'}
	citext := TypeInfo{OID: 50001, Name: "citext", Typmod: -1, Type: 'b', Category: 'S'}
	point := TypeInfo{OID: 600, Name: "point", Typmod: -1, Type: 'b', Category: 'G', Elem: &tiFloat8}
	rng := TypeInfo{OID: 3904, Name: "int4range", Typmod: -1, Type: 'r', Category: 'R'}
	comp := TypeInfo{OID: 50002, Name: "pair", Typmod: -1, Type: 'c', Category: 'C'}
	i2vec := TypeInfo{OID: oidInt2Vector, Name: "int2vector", Typmod: -1, Type: 'b', Category: 'A', Elem: &tiInt2}
	multi := arrayOf(tiInt4)
	multi.Dims = 2
	list := func(e record.Type) record.Type { return record.Type{Kind: record.KindList, Elem: &e} }
	k := func(kind record.Kind) record.Type { return record.Type{Kind: kind} }
	cases := []struct {
		name  string
		ti    TypeInfo
		want  record.Type
		known bool
	}{
		{"bool", tiBool, k(record.KindBool), true},
		{"int2", tiInt2, k(record.KindInt16), true},
		{"int4", tiInt4, k(record.KindInt32), true},
		{"int8", tiInt8, k(record.KindInt64), true},
		{"oid", tiOID, k(record.KindInt64), true},
		{"float4", tiFloat4, k(record.KindFloat32), true},
		{"float8", tiFloat8, k(record.KindFloat64), true},
		{"numeric", tiNumeric, record.Type{Kind: record.KindDecimalText, Scale: -1}, true},
		{"numeric(10,2)", numericOf(10, 2), record.Type{Kind: record.KindDecimal, Precision: 10, Scale: 2}, true},
		{"numeric(38,38)", numericOf(38, 38), record.Type{Kind: record.KindDecimal, Precision: 38, Scale: 38}, true},
		{"numeric(39,2)", numericOf(39, 2), record.Type{Kind: record.KindDecimalText, Scale: 2}, true},
		{"numeric(5,-2)", numericOf(5, -2), record.Type{Kind: record.KindDecimalText, Scale: -1}, true},
		{"numeric(3,5)", numericOf(3, 5), record.Type{Kind: record.KindDecimalText, Scale: 5}, true},
		{"text", tiText, k(record.KindString), true},
		{"varchar", base(oidVarchar, "character varying(20)"), k(record.KindString), true},
		{"bpchar", base(oidBPChar, "character(3)"), k(record.KindString), true},
		{"name", base(oidName, "name"), k(record.KindString), true},
		{"citext", citext, k(record.KindString), true},
		{"bytea", tiBytea, k(record.KindBytes), true},
		{"date", tiDate, k(record.KindDate), true},
		{"time", tiTime, k(record.KindTime), true},
		{"timetz", tiTimeTZ, k(record.KindString), true},
		{"timestamp", tiTimestamp, k(record.KindTimestamp), true},
		{"timestamptz", tiTimestampTZ, k(record.KindTimestampTZ), true},
		{"interval", tiInterval, k(record.KindString), true},
		{"uuid", tiUUID, k(record.KindUUID), true},
		{"json", base(oidJSON, "json"), k(record.KindJSON), true},
		{"jsonb", tiJSONB, k(record.KindJSON), true},
		{"enum", enum, k(record.KindString), true},
		{"inet", base(oidInet, "inet"), k(record.KindString), true},
		{"cidr", base(oidCIDR, "cidr"), k(record.KindString), true},
		{"macaddr", base(oidMacaddr, "macaddr"), k(record.KindString), true},
		{"bit", base(oidBit, "bit(4)"), k(record.KindString), true},
		{"varbit", base(oidVarbit, "bit varying"), k(record.KindString), true},
		{"money", base(oidMoney, "money"), k(record.KindString), true},
		{"xml", base(oidXML, "xml"), k(record.KindString), true},
		{"int4[]", arrayOf(tiInt4), list(k(record.KindInt32)), true},
		{"numeric(10,2)[]", arrayOf(numericOf(10, 2)), list(record.Type{Kind: record.KindDecimal, Precision: 10, Scale: 2}), true},
		{"mood[]", arrayOf(enum), list(k(record.KindString)), true},
		{"int4[][]", multi, list(list(k(record.KindInt32))), true},
		{"domain over numeric(12,3)", domainOf("money_amount", numericOf(12, 3)), record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 3}, true},
		{"domain over domain over int8", domainOf("d2", domainOf("d1", tiInt8)), k(record.KindInt64), true},
		{"array of domain", arrayOf(domainOf("posint", tiInt4)), list(k(record.KindInt32)), true},
		{"domain over int4[]", domainOf("ints", arrayOf(tiInt4)), list(k(record.KindInt32)), true},
		{"domain without base", TypeInfo{Name: "d", Type: 'd'}, k(record.KindString), false},
		{"point", point, k(record.KindString), false},
		{"point[]", arrayOf(point), k(record.KindString), false},
		{"int4range", rng, k(record.KindString), false},
		{"composite", comp, k(record.KindString), false},
		{"int2vector", i2vec, k(record.KindString), false},
		{"pg_lsn", base(3220, "pg_lsn"), k(record.KindString), false},
		{"tsvector", TypeInfo{OID: 3614, Name: "tsvector", Type: 'b', Category: 'U'}, k(record.KindString), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, known := NewCodec(tc.ti)
			if known != tc.known || c.Known() != tc.known {
				t.Errorf("known = %v, want %v", known, tc.known)
			}
			if got := c.Type(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("type = %v %+v, want %v %+v", got, got, tc.want, tc.want)
			}
		})
	}
}

type decodeCase struct {
	ti   TypeInfo
	text string
	want record.Value
	err  string // substring of the error; empty means success
}

func runDecodeCases(t *testing.T, cases []decodeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.ti.Name+"/"+tc.text, func(t *testing.T) {
			c, _ := NewCodec(tc.ti)
			in := []byte(tc.text)
			got, err := c.Decode(in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Decode(%q) = %#v, %v; want error containing %q", tc.text, got, err, tc.err)
				}
				if !strings.HasPrefix(err.Error(), "pgvalue: decode "+tc.ti.Name+" ") {
					t.Errorf("error %q does not name the type", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%q): %v", tc.text, err)
			}
			if !equalValue(got, tc.want) {
				t.Fatalf("Decode(%q) = %#v, want %#v", tc.text, got, tc.want)
			}
			// The codec must not retain its input.
			for i := range in {
				in[i] = '#'
			}
			if !equalValue(got, tc.want) {
				t.Fatalf("Decode(%q) result changed when the input was overwritten: %#v", tc.text, got)
			}
			// The block allocator gives the same value, with the same Go type.
			in = []byte(tc.text)
			got, err = c.DecodeWith(sharedAlloc, in)
			if err != nil || !equalValue(got, tc.want) {
				t.Fatalf("DecodeWith(%q) = %#v, %v; want %#v", tc.text, got, err, tc.want)
			}
			for i := range in {
				in[i] = '#'
			}
			if !equalValue(got, tc.want) {
				t.Fatalf("DecodeWith(%q) result changed when the input was overwritten: %#v", tc.text, got)
			}
		})
	}
}

// sharedAlloc serves every decode case, so values of many types share its blocks.
var sharedAlloc = &Alloc{}

// equalValue is reflect.DeepEqual that also treats NaN as equal to NaN.
func equalValue(a, b record.Value) bool {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok && math.IsNaN(x) && math.IsNaN(y) {
			return true
		}
	case float32:
		if y, ok := b.(float32); ok && math.IsNaN(float64(x)) && math.IsNaN(float64(y)) {
			return true
		}
	case []record.Value:
		y, ok := b.([]record.Value)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !equalValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func TestDecodeScalars(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{tiBool, "t", true, ""},
		{tiBool, "f", false, ""},
		{tiBool, "x", nil, "want t or f"},
		{tiInt2, "-32768", int16(math.MinInt16), ""},
		{tiInt2, "32767", int16(math.MaxInt16), ""},
		{tiInt2, "32768", nil, "out of range"},
		{tiInt2, "-32769", nil, "out of range"},
		{tiInt4, "-2147483648", int32(math.MinInt32), ""},
		{tiInt4, "2147483647", int32(math.MaxInt32), ""},
		{tiInt4, "0", int32(0), ""},
		{tiInt4, "2147483648", nil, "out of range"},
		{tiInt4, "", nil, "invalid syntax"},
		{tiInt4, "-", nil, "invalid syntax"},
		{tiInt4, "12a", nil, "invalid syntax"},
		{tiInt8, "-9223372036854775808", int64(math.MinInt64), ""},
		{tiInt8, "9223372036854775807", int64(math.MaxInt64), ""},
		{tiInt8, "9223372036854775808", nil, "out of range"},
		{tiInt8, "-9223372036854775809", nil, "out of range"},
		{tiInt8, "99999999999999999999999", nil, "out of range"},
		{tiOID, "4294967295", int64(4294967295), ""},
		{tiFloat4, "1.5", float32(1.5), ""},
		{tiFloat4, "3.40282347e+38", float32(math.MaxFloat32), ""},
		{tiFloat4, "NaN", float32(math.NaN()), ""},
		{tiFloat4, "Infinity", float32(math.Inf(1)), ""},
		{tiFloat4, "-Infinity", float32(math.Inf(-1)), ""},
		{tiFloat8, "0.1", 0.1, ""},
		{tiFloat8, "-1.7976931348623157e+308", -math.MaxFloat64, ""},
		{tiFloat8, "5e-324", 5e-324, ""},
		{tiFloat8, "-0", math.Copysign(0, -1), ""},
		{tiFloat8, "NaN", math.NaN(), ""},
		{tiFloat8, "Infinity", math.Inf(1), ""},
		{tiFloat8, "-Infinity", math.Inf(-1), ""},
		{tiFloat8, "1e999", nil, "out of range"},
		{tiFloat8, "abc", nil, "invalid syntax"},
		{numericOf(10, 2), "12.30", record.Decimal("12.30"), ""},
		{numericOf(10, 2), "-0.05", record.Decimal("-0.05"), ""},
		{numericOf(10, 0), "42", record.Decimal("42"), ""},
		{numericOf(10, 2), "NaN", record.Decimal("NaN"), ""},
		{numericOf(10, 2), "1e5", nil, "want [-]digits"},
		{numericOf(10, 2), ".5", nil, "want [-]digits"},
		{numericOf(10, 2), "5.", nil, "want [-]digits"},
		{numericOf(10, 2), "", nil, "want [-]digits"},
		{tiNumeric, "123456789012345678901234567890123456789012.000000000000000000001", record.Decimal("123456789012345678901234567890123456789012.000000000000000000001"), ""},
		{tiNumeric, "NaN", record.Decimal("NaN"), ""},
		{tiNumeric, "Infinity", record.Decimal("Infinity"), ""},
		{tiNumeric, "-Infinity", record.Decimal("-Infinity"), ""},
		{tiText, "", "", ""},
		{tiText, "héllo\tworld\n", "héllo\tworld\n", ""},
		{base(oidBPChar, "character(5)"), "ab   ", "ab   ", ""},
		{tiBytea, `\x`, []byte{}, ""},
		{tiBytea, `\x00ff10Ab`, []byte{0x00, 0xff, 0x10, 0xab}, ""},
		{tiBytea, `\x0`, nil, "invalid hex"},
		{tiBytea, `\xzz`, nil, "invalid hex"},
		{tiBytea, `a\\b\001`, []byte{'a', '\\', 'b', 1}, ""},
		{tiBytea, `a\9`, nil, "invalid bytea escape"},
		{tiUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", record.UUID{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}, ""},
		{tiUUID, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", record.UUID{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}, ""},
		{tiUUID, "a0eebc999c0b4ef8bb6d6bb9bd380a11", nil, "want 8-4-4-4-12"},
		{tiUUID, "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", nil, "want 8-4-4-4-12"},
		{tiJSONB, `{"a": [1, 2.50, "x"]}`, record.JSON(`{"a": [1, 2.50, "x"]}`), ""},
		{tiInterval, "P1Y2M3DT4H5M6.789S", "P1Y2M3DT4H5M6.789S", ""},
		{tiInterval, "PT0S", "PT0S", ""},
		{tiInterval, "P-1Y-2M3DT-4H-5M-6.789S", "P-1Y-2M3DT-4H-5M-6.789S", ""},
		{tiTimeTZ, "12:34:56.789+05:30", "12:34:56.789+05:30", ""},
		{tiTimeTZ, "12:34:56-08", "12:34:56-08", ""},
		{TypeInfo{OID: 50000, Name: "mood", Type: 'e'}, "happy", "happy", ""},
		{base(oidVarbit, "bit varying"), "0101", "0101", ""},
		{base(3220, "pg_lsn"), "16/B374D848", "16/B374D848", ""},
	})
}

func TestDecodeDateTime(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{tiDate, "1970-01-01", record.Date(0), ""},
		{tiDate, "1969-12-31", record.Date(-1), ""},
		{tiDate, "2024-02-29", dateOf(2024, 2, 29), ""},
		{tiDate, "2000-02-29", dateOf(2000, 2, 29), ""},
		{tiDate, "1900-02-29", nil, "want YYYY-MM-DD"},
		{tiDate, "2023-02-29", nil, "want YYYY-MM-DD"},
		{tiDate, "2023-13-01", nil, "want YYYY-MM-DD"},
		{tiDate, "0001-01-01", dateOf(1, 1, 1), ""},
		{tiDate, "0001-12-31 BC", dateOf(0, 12, 31), ""},
		{tiDate, "0044-03-15 BC", dateOf(-43, 3, 15), ""},
		{tiDate, "0005-02-29 BC", dateOf(-4, 2, 29), ""}, // 5 BC is astronomical -4, a leap year
		{tiDate, "4714-11-24 BC", dateOf(-4713, 11, 24), ""},
		{tiDate, "5874897-12-31", dateOf(5874897, 12, 31), ""},
		{tiDate, "12345-06-07", dateOf(12345, 6, 7), ""},
		{tiDate, "infinity", DateInfinity, ""},
		{tiDate, "-infinity", DateNegInfinity, ""},
		{tiDate, "0000-01-01", nil, "want YYYY-MM-DD"},
		{tiDate, "2024-01-01 AD", nil, "want YYYY-MM-DD"},
		{tiDate, "99999999-01-01", nil, "want YYYY-MM-DD"},
		{tiDate, "24-01-01", nil, "want YYYY-MM-DD"},
		{tiTime, "00:00:00", record.Time(0), ""},
		{tiTime, "12:34:56.789", record.Time(((12*60+34)*60+56)*1_000_000 + 789_000), ""},
		{tiTime, "23:59:59.999999", record.Time(86_400_000_000 - 1), ""},
		{tiTime, "24:00:00", record.Time(86_400_000_000), ""},
		{tiTime, "24:00:01", nil, "want HH:MM:SS"},
		{tiTime, "12:60:00", nil, "want HH:MM:SS"},
		{tiTime, "12:00:00.1234567", nil, "want HH:MM:SS"},
		{tiTime, "12:00:00.", nil, "want HH:MM:SS"},
		{tiTime, "12:00", nil, "want HH:MM:SS"},
		{tiTimestamp, "1970-01-01 00:00:00", record.Timestamp(0), ""},
		{tiTimestamp, "2024-01-02 03:04:05.123456", tsOf(2024, 1, 2, 3, 4, 5, 123456, 0), ""},
		{tiTimestamp, "2024-01-02 03:04:05.5", tsOf(2024, 1, 2, 3, 4, 5, 500000, 0), ""},
		{tiTimestamp, "1969-12-31 23:59:59.999999", record.Timestamp(-1), ""},
		{tiTimestamp, "0044-03-15 12:00:00 BC", tsOf(-43, 3, 15, 12, 0, 0, 0, 0), ""},
		{tiTimestamp, "4714-11-24 00:00:00 BC", tsOf(-4713, 11, 24, 0, 0, 0, 0, 0), ""},
		{tiTimestamp, "294246-12-31 23:59:59.999999", tsOf(294246, 12, 31, 23, 59, 59, 999999, 0), ""},
		{tiTimestamp, "294276-12-31 23:59:59.999999", nil, "out of range"},
		{tiTimestamp, "infinity", record.TimestampInfinity, ""},
		{tiTimestamp, "-infinity", record.TimestampNegInfinity, ""},
		{tiTimestamp, "2024-01-02 03:04:05+00", nil, "want YYYY-MM-DD HH:MM:SS"},
		{tiTimestamp, "2024-01-02", nil, "want YYYY-MM-DD HH:MM:SS"},
		{tiTimestampTZ, "2024-01-02 03:04:05.123456+00", tsOf(2024, 1, 2, 3, 4, 5, 123456, 0), ""},
		{tiTimestampTZ, "2024-01-02 03:04:05+05:30", tsOf(2024, 1, 2, 3, 4, 5, 0, 5*3600+30*60), ""},
		{tiTimestampTZ, "2024-01-02 03:04:05-08", tsOf(2024, 1, 2, 3, 4, 5, 0, -8*3600), ""},
		{tiTimestampTZ, "1890-01-02 03:04:05+05:30:12", tsOf(1890, 1, 2, 3, 4, 5, 0, 5*3600+30*60+12), ""},
		{tiTimestampTZ, "1890-01-02 03:04:05.25-00:17:30", tsOf(1890, 1, 2, 3, 4, 5, 250000, -(17*60 + 30)), ""},
		{tiTimestampTZ, "0044-03-15 12:00:00+00 BC", tsOf(-43, 3, 15, 12, 0, 0, 0, 0), ""},
		{tiTimestampTZ, "2024-01-02T03:04:05Z", nil, "invalid UTC offset"},
		{tiTimestampTZ, "2024-01-02 03:04:05", nil, "invalid UTC offset"},
		{tiTimestampTZ, "2024-01-02 03:04:05+5", nil, "invalid UTC offset"},
		{tiTimestampTZ, "2024-01-02 03:04:05+05:3", nil, "invalid UTC offset"},
		{tiTimestampTZ, "2024-01-02 03:04:05+00 AD", nil, "want YYYY-MM-DD HH:MM:SS"},
		{tiTimestampTZ, "infinity", record.TimestampInfinity, ""},
		{tiTimestampTZ, "-infinity", record.TimestampNegInfinity, ""},
	})
}

func TestDecodeArrays(t *testing.T) {
	ints := arrayOf(tiInt4)
	texts := arrayOf(tiText)
	ints2 := arrayOf(tiInt4)
	ints2.Name, ints2.Dims = "integer[][]", 2
	texts3 := arrayOf(tiText)
	texts3.Name, texts3.Dims = "text[][][]", 3
	L := func(v ...record.Value) []record.Value {
		if v == nil {
			return []record.Value{}
		}
		return v
	}
	runDecodeCases(t, []decodeCase{
		{ints, "{}", L(), ""},
		{ints, "{1,2,3}", L(int32(1), int32(2), int32(3)), ""},
		{ints, "{-2147483648,NULL,2147483647}", L(int32(math.MinInt32), nil, int32(math.MaxInt32)), ""},
		{ints, "{null,NuLl}", L(nil, nil), ""},
		{ints, "[0:2]={1,2,3}", L(int32(1), int32(2), int32(3)), ""},
		{ints, "[-5:-4]={7,8}", L(int32(7), int32(8)), ""},
		{ints, "{{1,2},{3,4}}", nil, "the value has 2 dimensions, the column is declared with 1"},
		{ints, "[1:2][0:1]={{1,2},{3,4}}", nil, "TYPE integer[][]"},
		{ints2, "{{1,2},{3,NULL}}", L(L(int32(1), int32(2)), L(int32(3), nil)), ""},
		{ints2, "[1:2][0:1]={{1,2},{3,4}}", L(L(int32(1), int32(2)), L(int32(3), int32(4))), ""},
		{ints2, "{}", L(), ""},
		{ints2, "{1,2}", nil, "the value has 1 dimensions, the column is declared with 2"},
		{ints2, "{{{1}}}", nil, "the value has 3 dimensions"},
		{texts3, `{{{a,"b,c"}},{{NULL,"{d}"}}}`, L(L(L("a", "b,c")), L(L(nil, "{d}"))), ""},
		{ints, " { 1 , 2 } ", L(int32(1), int32(2)), ""},
		{ints, `{"1","2"}`, L(int32(1), int32(2)), ""},
		{ints, "{1,x}", nil, "array element 2: invalid syntax"},
		{ints, "{1,2", nil, "unexpected end"},
		{ints, "{1,2}x", nil, "junk after closing brace"},
		{ints, "1,2", nil, "want '{'"},
		{ints, "[0:2]{1}", nil, "dimension decoration"},
		{ints, "[a]={1}", nil, "dimension decoration"},
		{ints, "{{{{{{{1}}}}}}}", nil, "the value has 7 dimensions"},
		{ints, "{1 2}", nil, "invalid syntax"},
		{texts, `{a,b}`, L("a", "b"), ""},
		{texts, `{"a,b","{c}","d\"e","f\\g",""}`, L("a,b", "{c}", `d"e`, `f\g`, ""), ""},
		{texts, `{"NULL",NULL,"null"}`, L("NULL", nil, "null"), ""},
		{texts, `{"  padded  ",unq}`, L("  padded  ", "unq"), ""},
		{texts, `{a\,b,c\ ,d}`, L("a,b", "c ", "d"), ""},
		{texts, `{NUL\L}`, L("NULL"), ""},
		{texts, `{"héllo wörld","tab	here"}`, L("héllo wörld", "tab\there"), ""},
		{texts, `{"unterminated}`, nil, "unterminated quoted element"},
		{texts, `{"a"b}`, nil, "want ',' or '}'"},
		{texts, `{a"b}`, nil, "unexpected character"},
		{arrayOf(tiBytea), `{"\\x0102",NULL,"\\x"}`, L([]byte{1, 2}, nil, []byte{}), ""},
		{arrayOf(numericOf(10, 2)), `{1.50,NaN,-0.01}`, L(record.Decimal("1.50"), record.Decimal("NaN"), record.Decimal("-0.01")), ""},
		{arrayOf(tiTimestampTZ), `{"2024-01-02 03:04:05+00",infinity}`, L(tsOf(2024, 1, 2, 3, 4, 5, 0, 0), record.TimestampInfinity), ""},
		{arrayOf(tiDate), `{2024-01-02,"0044-03-15 BC"}`, L(dateOf(2024, 1, 2), dateOf(-43, 3, 15)), ""},
		{arrayOf(tiJSONB), `{"{\"a\": 1}","[1, 2]"}`, L(record.JSON(`{"a": 1}`), record.JSON(`[1, 2]`)), ""},
		{arrayOf(tiUUID), `{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}`, L(record.UUID{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}), ""},
		{arrayOf(tiFloat8), `{NaN,Infinity,-Infinity,1.5}`, L(math.NaN(), math.Inf(1), math.Inf(-1), 1.5), ""},
		{arrayOf(tiBool), `{t,f,NULL}`, L(true, false, nil), ""},
		{arrayOf(domainOf("ints", arrayOf(tiInt4))), `{"{1,2}","{}",NULL}`, L(L(int32(1), int32(2)), L(), nil), ""},
	})
}

func TestDecodeErrorTruncatesLongText(t *testing.T) {
	c, _ := NewCodec(tiInt8)
	_, err := c.Decode([]byte(strings.Repeat("9", 500)))
	if err == nil {
		t.Fatal("want an error")
	}
	if len(err.Error()) > 200 || !strings.Contains(err.Error(), `..."`) {
		t.Errorf("error not truncated: %q", err)
	}
}

func TestSplitCopyLine(t *testing.T) {
	cases := []struct {
		line string
		want []string
	}{
		{"\n", []string{""}},
		{"", []string{""}},
		{"a\n", []string{"a"}},
		{"a\tb\tc\n", []string{"a", "b", "c"}},
		{"a\t\t\\N\n", []string{"a", "", `\N`}},
		{"a\tb", []string{"a", "b"}},
		{"x\\ty\tz\n", []string{`x\ty`, "z"}},
		{"\t\n", []string{"", ""}},
	}
	var fields [][]byte
	for _, tc := range cases {
		fields = SplitCopyLine([]byte(tc.line), fields)
		got := make([]string, len(fields))
		for i, f := range fields {
			got[i] = string(f)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCopyLine(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestUnescapeCopyText(t *testing.T) {
	cases := []struct {
		field string
		want  string
		null  bool
	}{
		{`\N`, "", true},
		{`\\N`, `\N`, false},
		{`N`, "N", false},
		{"", "", false},
		{"plain text", "plain text", false},
		{`a\\b`, `a\b`, false},
		{`\t\n\r\b\f\v`, "\t\n\r\b\f\v", false},
		{`\101\0\7x`, "A\x00\x07x", false},
		{`\1011`, "A1", false},
		{`\777`, "\xff", false},
		{`\x41\x4g\xz`, "A\x04gxz", false},
		{`\x`, "x", false},
		{`\q\.`, "q.", false},
		{`end\`, `end\`, false},
		{`\\x00ff`, `\x00ff`, false},
	}
	for _, tc := range cases {
		raw, null := UnescapeCopyText([]byte(tc.field))
		if null != tc.null || string(raw) != tc.want || (null && raw != nil) {
			t.Errorf("UnescapeCopyText(%q) = %q, %v; want %q, %v", tc.field, raw, null, tc.want, tc.null)
		}
	}
}

func TestDecodeDoesNotAllocateForInt8AndTimestamp(t *testing.T) {
	i8, _ := NewCodec(tiInt8)
	ts, _ := NewCodec(tiTimestampTZ)
	in1 := []byte("123")
	in2 := []byte("2024-01-02 03:04:05.123456+00")
	// Boxing into record.Value costs one allocation per value; nothing else may.
	if n := testing.AllocsPerRun(100, func() { _, _ = i8.Decode(in1) }); n > 1 {
		t.Errorf("int8 decode: %v allocs, want <= 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = ts.Decode(in2) }); n > 1 {
		t.Errorf("timestamptz decode: %v allocs, want <= 1", n)
	}
	var fields [][]byte
	line := []byte("1\tabc\t2024-01-02\t\\N\n")
	fields = SplitCopyLine(line, fields)
	if n := testing.AllocsPerRun(100, func() { fields = SplitCopyLine(line, fields) }); n != 0 {
		t.Errorf("SplitCopyLine: %v allocs, want 0", n)
	}
}

func TestAllocValuesStayIntactAcrossBlocks(t *testing.T) {
	type col struct {
		ti   TypeInfo
		text func(i int) string
		want func(i int) record.Value
	}
	cols := []col{
		{tiInt8, func(i int) string { return strconv.Itoa(i * 1000003) }, func(i int) record.Value { return int64(i * 1000003) }},
		{tiInt4, func(i int) string { return strconv.Itoa(-i) }, func(i int) record.Value { return int32(-i) }},
		{tiText, func(i int) string { return strings.Repeat("x", i%50) + strconv.Itoa(i) }, func(i int) record.Value { return strings.Repeat("x", i%50) + strconv.Itoa(i) }},
		{numericOf(12, 2), func(i int) string { return strconv.Itoa(i) + ".25" }, func(i int) record.Value { return record.Decimal(strconv.Itoa(i) + ".25") }},
		{tiJSONB, func(i int) string { return `{"a": ` + strconv.Itoa(i) + `}` }, func(i int) record.Value { return record.JSON(`{"a": ` + strconv.Itoa(i) + `}`) }},
		{tiUUID, func(i int) string { return "00000000-0000-0000-0000-" + strconv.FormatInt(1e10+int64(i), 10) + "a" }, nil},
		{tiTimestampTZ, func(i int) string { return "2024-01-02 03:04:05+00" }, func(i int) record.Value { return tsOf(2024, 1, 2, 3, 4, 5, 0, 0) }},
	}
	var a Alloc
	const n = 3000 // several blocks of each kind
	got := make([][]record.Value, n)
	for i := 0; i < n; i++ {
		for _, c := range cols {
			codec, _ := NewCodec(c.ti)
			v, err := codec.DecodeWith(&a, []byte(c.text(i)))
			if err != nil {
				t.Fatal(err)
			}
			got[i] = append(got[i], v)
		}
	}
	// Appending to a JSON value must not write into the next value's text.
	for i := 0; i < n; i++ {
		j := got[i][4].(record.JSON)
		_ = append(j, "garbage"...)
	}
	runtime.GC()
	for i := 0; i < n; i++ {
		for k, c := range cols {
			if c.want == nil {
				u := got[i][k].(record.UUID)
				if s := u.String(); s != c.text(i) {
					t.Fatalf("row %d uuid = %s, want %s", i, s, c.text(i))
				}
				continue
			}
			if w := c.want(i); !equalValue(got[i][k], w) {
				t.Fatalf("row %d column %d = %#v, want %#v", i, k, got[i][k], w)
			}
		}
	}
	// No allocation per value once the blocks exist (amortised over a block).
	i8, _ := NewCodec(tiInt8)
	txt, _ := NewCodec(tiText)
	in := []byte("12345")
	if allocs := testing.AllocsPerRun(1000, func() {
		_, _ = i8.DecodeWith(&a, in)
		_, _ = txt.DecodeWith(&a, in)
	}); allocs > 0.1 {
		t.Errorf("DecodeWith: %v allocs per run, want amortised ~0", allocs)
	}
}
