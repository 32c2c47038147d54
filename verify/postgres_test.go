package verify

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/connectd/connectd/record"
	"github.com/connectd/connectd/sources/postgres/pgvalue"
)

// TestCanonicalAgreesWithPostgresTextAndBinary has PostgreSQL render random values two
// ways: as text, decoded by pgvalue exactly as the source's snapshot decodes them, and in
// binary, decoded by pgx and converted here. Both must give the same canonical bytes,
// and so must two spellings of one value the server stores equal.
func TestCanonicalAgreesWithPostgresTextAndBinary(t *testing.T) {
	pg := sharedPG.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := pgx.ParseConfig(pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"DateStyle": "ISO", "TimeZone": "UTC", "IntervalStyle": "iso_8601", "extra_float_digits": "3", "bytea_output": "hex"} {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	type kind struct {
		sql  string
		info pgvalue.TypeInfo
		gen  func() string // an SQL literal
	}
	f8 := pgvalue.TypeInfo{OID: 701, Name: "double precision", Typmod: -1, Type: 'b', Category: 'N'}
	num := pgvalue.TypeInfo{OID: 1700, Name: "numeric", Typmod: -1, Type: 'b', Category: 'N'}
	kinds := []kind{
		{sql: "numeric", info: num, gen: func() string { return quote(randNumeric(rng)) }},
		{sql: "float8", info: f8, gen: func() string { return quote(randFloat(rng)) }},
		{sql: "timestamptz", info: pgvalue.TypeInfo{OID: 1184, Name: "timestamp with time zone", Typmod: -1, Type: 'b', Category: 'D'},
			gen: func() string { return quote(randTimestamptz(rng)) }},
		{sql: "jsonb", info: pgvalue.TypeInfo{OID: 3802, Name: "jsonb", Typmod: -1, Type: 'b', Category: 'U'},
			gen: func() string { return quote(randJSON(rng, 3)) }},
		{sql: "float8[]", info: pgvalue.TypeInfo{OID: 1022, Name: "double precision[]", Typmod: -1, Type: 'b', Category: 'A', Elem: &f8, Dims: 1},
			gen: func() string { return randArray(rng, func() string { return `"` + randFloat(rng) + `"` }) }},
		{sql: "numeric[]", info: pgvalue.TypeInfo{OID: 1231, Name: "numeric[]", Typmod: -1, Type: 'b', Category: 'A', Elem: &num, Dims: 1},
			gen: func() string { return randArray(rng, func() string { return `"` + randNumeric(rng) + `"` }) }},
	}
	for _, k := range kinds {
		codec, known := pgvalue.NewCodec(k.info)
		if !known {
			t.Fatalf("%s: pgvalue does not know it", k.sql)
		}
		typ := codec.Type()
		for range 200 {
			lit := k.gen()
			var text *string
			var bin any
			q := fmt.Sprintf("SELECT (%s::%s)::text, %s::%s", lit, k.sql, lit, k.sql)
			if err := conn.QueryRow(ctx, q, pgx.QueryResultFormats{pgx.TextFormatCode, pgx.BinaryFormatCode}).Scan(&text, scanTarget(k.sql, &bin)); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			fromText, err := codec.Decode([]byte(*text))
			if err != nil {
				t.Fatalf("%s: pgvalue: %v", q, err)
			}
			fromBin := recordOf(t, k.sql, bin)
			a, b := AppendCanonical(nil, typ, fromText), AppendCanonical(nil, typ, fromBin)
			if string(a) != string(b) {
				t.Fatalf("%s\ntext %q -> %v -> %q\nbinary %#v -> %q", q, *text, fromText, a, fromBin, b)
			}
			// The server's text, fed back as a literal, is the same value: same form.
			var again string
			if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT (%s::%s)::text", quote(*text), k.sql)).Scan(&again); err != nil {
				t.Fatal(err)
			}
			if v, err := codec.Decode([]byte(again)); err != nil || string(AppendCanonical(nil, typ, v)) != string(a) {
				t.Fatalf("%s: %q read back as %q (%v)", k.sql, *text, again, err)
			}
		}
	}
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func randArray(rng *rand.Rand, elem func() string) string {
	n := rng.IntN(5)
	parts := make([]string, n)
	for i := range parts {
		if rng.IntN(6) == 0 {
			parts[i] = "NULL"
		} else {
			parts[i] = elem()
		}
	}
	return quote("{" + strings.Join(parts, ",") + "}")
}

func randNumeric(rng *rand.Rand) string {
	switch rng.IntN(12) {
	case 0:
		return "NaN"
	case 1:
		return []string{"Infinity", "-Infinity"}[rng.IntN(2)]
	case 2:
		return []string{"0", "-0.000", "0.0"}[rng.IntN(3)]
	}
	var b strings.Builder
	if rng.IntN(2) == 0 {
		b.WriteByte('-')
	}
	for range 1 + rng.IntN(25) {
		b.WriteByte(byte('0' + rng.IntN(10)))
	}
	if rng.IntN(3) > 0 {
		b.WriteByte('.')
		for range 1 + rng.IntN(20) {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
	}
	if rng.IntN(5) == 0 {
		b.WriteString("e" + strconv.Itoa(rng.IntN(40)-20))
	}
	return b.String()
}

func randFloat(rng *rand.Rand) string {
	switch rng.IntN(10) {
	case 0:
		return []string{"NaN", "Infinity", "-Infinity", "-0", "0"}[rng.IntN(5)]
	case 1:
		return strconv.FormatFloat(rng.NormFloat64(), 'g', -1, 64)
	}
	for {
		f := math.Float64frombits(rng.Uint64())
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
	}
}

func randTimestamptz(rng *rand.Rand) string {
	switch rng.IntN(10) {
	case 0:
		return []string{"infinity", "-infinity"}[rng.IntN(2)]
	}
	lo, hi := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).UnixMicro()
	us := lo + rng.Int64N(hi-lo)
	off := (rng.IntN(29) - 14) * 3600
	return time.UnixMicro(us).In(time.FixedZone("", off)).Format("2006-01-02 15:04:05.999999-07:00")
}

func randJSON(rng *rand.Rand, depth int) string {
	ws := func() string { return []string{"", " ", "\n  "}[rng.IntN(3)] }
	switch n := rng.IntN(8); {
	case depth > 0 && n == 0:
		var parts []string
		for i := range rng.IntN(4) {
			parts = append(parts, ws()+fmt.Sprintf(`"k%d%s"`, i, []string{"", "é", `\"`, `\n`}[rng.IntN(4)])+ws()+":"+randJSON(rng, depth-1))
		}
		rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		return "{" + strings.Join(parts, ",") + "}"
	case depth > 0 && n == 1:
		var parts []string
		for range rng.IntN(4) {
			parts = append(parts, ws()+randJSON(rng, depth-1))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case n == 2:
		return []string{"true", "false", "null"}[rng.IntN(3)]
	case n == 3:
		return []string{`"a"`, `"\u00e9\t"`, `""`, `"\\"`}[rng.IntN(4)]
	}
	return []string{"1", "-1.50", "0", "1.0", "12345678901234567890.5", strconv.Itoa(rng.IntN(1000))}[rng.IntN(6)]
}

// scanTarget picks what pgx decodes each type's binary form into.
func scanTarget(sqlType string, v *any) any {
	switch sqlType {
	case "numeric":
		*v = new(pgtype.Numeric)
	case "float8":
		*v = new(float64)
	case "timestamptz":
		*v = new(pgtype.Timestamptz)
	case "jsonb":
		*v = new([]byte)
	case "float8[]":
		*v = new([]pgtype.Float8)
	case "numeric[]":
		*v = new([]pgtype.Numeric)
	}
	return *v
}

// recordOf converts pgx's binary decoding into the record value of the column's kind.
func recordOf(t *testing.T, sqlType string, v any) record.Value {
	t.Helper()
	switch x := v.(type) {
	case *pgtype.Numeric:
		return numericOf(*x)
	case *float64:
		return *x
	case *pgtype.Timestamptz:
		switch x.InfinityModifier {
		case pgtype.Infinity:
			return record.TimestampInfinity
		case pgtype.NegativeInfinity:
			return record.TimestampNegInfinity
		}
		return record.Timestamp(x.Time.UnixMicro())
	case *[]byte:
		return record.JSON(*x)
	case *[]pgtype.Float8:
		l := make([]record.Value, len(*x))
		for i, e := range *x {
			if e.Valid {
				l[i] = e.Float64
			}
		}
		return l
	case *[]pgtype.Numeric:
		l := make([]record.Value, len(*x))
		for i, e := range *x {
			if e.Valid {
				l[i] = numericOf(e)
			}
		}
		return l
	}
	t.Fatalf("%s: no conversion of %T", sqlType, v)
	return nil
}

// numericOf writes pgx's numeric as digits and an exponent, a spelling the source
// never uses, so the canonical form's normalization is what makes them agree.
func numericOf(n pgtype.Numeric) record.Value {
	switch {
	case n.NaN:
		return record.Decimal("NaN")
	case n.InfinityModifier == pgtype.Infinity:
		return record.Decimal("Infinity")
	case n.InfinityModifier == pgtype.NegativeInfinity:
		return record.Decimal("-Infinity")
	}
	return record.Decimal(n.Int.String() + "e" + strconv.Itoa(int(n.Exp)))
}
