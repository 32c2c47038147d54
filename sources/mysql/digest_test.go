package mysql

import (
	"bytes"
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	gomysql "github.com/go-sql-driver/mysql"
)

// digestColumns is a column of every type the digest form renders, after the key
// (id); digestValues fills them in this order.
const digestColumns = `c_tiny tinyint, c_utiny tinyint unsigned, c_bool tinyint(1), c_small smallint, c_usmall smallint unsigned,
 c_med mediumint, c_umed mediumint unsigned, c_int int, c_uint int unsigned, c_big bigint, c_ubig bigint unsigned,
 c_year year, c_dec decimal(10,2), c_udec decimal(20,0) unsigned, c_wide decimal(65,30),
 c_float float, c_double double, c_bit bit(64), c_bit5 bit(5),
 c_char char(10), c_varchar varchar(50), c_text text, c_latin varchar(50) CHARACTER SET latin1,
 c_utf16 varchar(20) CHARACTER SET utf16, c_binary binary(8), c_varbinary varbinary(50), c_blob blob,
 c_enum enum('a','b c','é'), c_set set('x','y','z'),
 c_date date, c_dt datetime, c_dt6 datetime(6), c_ts timestamp(6) NULL, c_time time, c_time6 time(6),
 c_json json, c_uuid uuid, c_inet6 inet6, c_zint int zerofill, c_zdec decimal(10,2) zerofill, c_zdouble double zerofill`

// digestTableDDL creates table (db.name) with an AUTO_INCREMENT key and digestColumns.
func digestTableDDL(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + table + " (id int AUTO_INCREMENT PRIMARY KEY, " + digestColumns + ")"
}

// digestValues derives a value for each of digestColumns from fuzz inputs, in forms
// the server stores as they are or with its own truncation and rounding (the tests
// compare what it stored, not what was sent); a set bit j of nulls makes column j
// NULL. Dates take their digits from u read as DD_MM_YYYY (31_12_9999 is 9999-12-31),
// clocks from |i| read as HHH_MM_SS_ffffff, so seeds can name them.
func digestValues(i int64, u uint64, fl float64, s string, b []byte, nulls uint64) []any {
	x := uint64(i)
	if i < 0 {
		x = -x
	}
	us, sec, minute, hour := x%1e6, x/1e6%100%60, x/1e8%100%60, x/1e10%1000
	clock := fmt.Sprintf("%02d:%02d:%02d.%06d", hour%24, minute, sec, us)
	date := fmt.Sprintf("%04d-%02d-%02d", u%1e4, u/1e4%100%13, u/1e6%100%32)
	dec := i % 1e10
	decSign := ""
	if dec < 0 {
		decSign, dec = "-", -dec
	}
	var f32, f64 any
	if !math.IsNaN(fl) && !math.IsInf(fl, 0) {
		f64 = fl
		if f := float32(fl); !math.IsInf(float64(f), 0) {
			f32 = float64(f)
		}
	}
	timeSign := ""
	if i < 0 {
		timeSign = "-"
	}
	doc := s
	if !json.Valid([]byte(s)) {
		j, _ := json.Marshal(s)
		doc = string(j)
	}
	year := int64(1901 + u%255)
	if u%64 == 0 {
		year = 0
	}
	h := md5.Sum(append([]byte(s), b...))
	var uuid record.UUID
	copy(uuid[:], h[:])
	vals := []any{
		int64(int8(i)), int64(uint8(u)), int64(int8(i >> 8)), int64(int16(i)), int64(uint16(u)),
		i << 40 >> 40, int64(u & 0xffffff), int64(int32(i)), int64(uint32(u)), i, u,
		year,
		fmt.Sprintf("%s%d.%02d", decSign, dec/100, dec%100), strconv.FormatUint(u, 10), strconv.FormatInt(i, 10) + "." + strconv.FormatUint(u, 10),
		f32, f64, u, int64(u & 31),
		s, s, s, s,
		s, b, b, b,
		int64(u % 4), int64(u % 8),
		date, date + " " + clock, date + " " + clock,
		time.Unix(1+int64(u%(1<<31-2)), 0).UTC().Format("2006-01-02 15:04:05") + fmt.Sprintf(".%06d", us),
		fmt.Sprintf("%s%d:%02d:%02d", timeSign, hour%839, minute, sec), fmt.Sprintf("%s%d:%02d:%02d.%06d", timeSign, hour%839, minute, sec, us),
		doc, uuid.String(), netip.AddrFrom16(md5.Sum(b)).String(), int64(uint32(u)), fmt.Sprintf("%d.%02d", dec/100, dec%100), f64,
	}
	for j := range vals {
		if nulls>>j&1 == 1 {
			vals[j] = nil
		}
	}
	return vals
}

// digestEdgeRows are values the random ones rarely reach, as SQL.
var digestEdgeRows = []string{
	// every column NULL
	"(id) VALUES (NULL)",
	"VALUES (NULL, -128, 255, 127, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615," +
		" 2155, -99999999.99, 99999999999999999999, '-99999999999999999999999999999999999.999999999999999999999999999999'," +
		" -3.4028234663852886e38, -1.7976931348623157e308, b'1111111111111111111111111111111111111111111111111111111111111111', b'11111'," +
		" 'N', 'a,b', 'ひらがな ✓ 🎉', 'café €', 'ü€', x'ffffffffffffffff', x'', x'00'," +
		" 'é', 'x,y,z', '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '-838:59:59', '838:59:59.999999'," +
		" '{\"k\": [1, 2.50, \"ü\"]}', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 4294967295, 99999999.99, 1.7976931348623157e308)",
	"VALUES (NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0," +
		" 0, 0.00, 0, 0.100000000000000000000000000000," +
		" 0, 1e15, 0, 0," +
		" '', '', '', '', '', x'01', x'', x''," +
		" '', '', '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '00:00:00', '-00:00:00.000001'," +
		" '\"\"', '00000000-0000-0000-0000-000000000000', '::', 0, 0, 0)",
	"VALUES (NULL, 1, 1, -1, 1, 1, 1, 1, 1, 1, 1, 1," +
		" 1901, -0.50, 1, -0.000000000000000000000000000001," +
		" 1.1754943508222875e-38, 5e-324, 1, 1," +
		" ' a ', 'N ', 'ends with space ', 'Œ', '\\t', x'2000', x'00ff', x'ffff'," +
		" 'b c', 'x', '0000-01-01', '0000-02-28 12:00:00', '0000-02-29 23:59:59.999999', '1970-01-01 00:00:01', '-00:00:01', '-12:34:56.789012'," +
		" 'null', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '::ffff:192.0.2.1', 1, 0.01, 1e-300)",
	"VALUES (NULL, -1, 2, 2, -1, 2, -1, 2, -1, 2, -1, 2," +
		" 1999, 12.30, 10, 123.4," +
		" 1.5, 1234567890123456.8, 9223372036854775808, 16," +
		" 'x', 'y', 'z', '', '', x'01', x'01', x'01'," +
		" 'a', 'y,z', '0000-03-01', '0001-01-01 00:00:00', '1969-12-31 23:59:59.999999', '2000-02-29 00:00:00', '00:00:00.5', '-00:00:00.5'," +
		" '[]', '01234567-89ab-cdef-0123-456789abcdef', '2001:db8::1', 42, 12.30, 1e15)",
	// dates the server keeps with ALLOW_INVALID_DATES and zero parts
	"(c_date, c_dt, c_dt6) VALUES ('2024-02-31', '2024-02-30 10:00:00', '0000-02-31 00:00:00.5')",
	"(c_date, c_dt, c_dt6) VALUES ('2024-00-15', '2024-05-00 10:00:00', '0000-00-01 00:00:00')",
	"(c_date, c_dt, c_dt6) VALUES ('2023-04-31', '0000-01-01 00:00:00', '0000-12-31 23:59:59.999999')",
}

// digestInserter opens a connection that sends parameters in the binary protocol,
// so fuzzed bytes and floats (-0, subnormals) reach the server unescaped and exact,
// with invalid and zero dates allowed and nothing strict: the server stores what it
// can of each value.
func digestInserter(t testing.TB) *sql.DB {
	t.Helper()
	c, err := gomysql.ParseDSN(mariaServer(t).DSN)
	if err != nil {
		t.Fatal(err)
	}
	c.Params = map[string]string{"time_zone": "'+00:00'", "sql_mode": "'ALLOW_INVALID_DATES'"}
	c.Collation = "utf8mb4_general_ci"
	conn, err := gomysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// sourceDB opens a connection as the source's own (utf8mb4, UTC, text protocol).
func sourceDB(t testing.TB) *sql.DB {
	t.Helper()
	var st settings
	if err := st.parseDSN(mariaServer(t).DSN); err != nil {
		t.Fatal(err)
	}
	db, err := st.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// insertDigestRow inserts one row of digestValues into table.
func insertDigestRow(t testing.TB, db *sql.DB, table string, vals []any) {
	t.Helper()
	q := "INSERT INTO " + table + " VALUES (NULL" + strings.Repeat(", ?", len(vals)) + ")"
	if _, err := db.ExecContext(context.Background(), q, vals...); err != nil {
		t.Fatalf("insert %v: %v", vals, err)
	}
}

// liveSchema maps the table's current definition as the source does.
func liveSchema(t testing.TB, db *sql.DB, tn tableName, opts typeOpts) *tableSchema {
	t.Helper()
	ddl, err := showCreate(context.Background(), db, tn)
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDDL(ddl, tn.db)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := buildSchema(tn, d.def, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// FuzzDigestFields inserts fuzzed values into a column of every type the digest form
// renders and checks, column by column, that the server's field text equals the text
// Go renders from the value the snapshot's decoder makes of the same row.
func FuzzDigestFields(f *testing.F) {
	f.Add(int64(0), uint64(0), 0.0, "", []byte(nil))
	f.Add(int64(-1), uint64(1), -1.0, "N", []byte{0})
	f.Add(int64(math.MinInt64), uint64(math.MaxUint64), math.MaxFloat64, "héllo, wörld ✓", []byte{0xff, 0xfe})
	f.Add(int64(math.MaxInt64), uint64(31_12_9999), math.SmallestNonzeroFloat64, "a,b", []byte("a,b"))
	f.Add(int64(-235959_999999), uint64(29_02_0000), math.Copysign(0, -1), "\xff\xfe invalid", []byte("N"))
	f.Add(int64(8385959_000001), uint64(1_01_0000), 1e15, "🎉", []byte{})
	f.Add(int64(123456), uint64(28_02_0000), 1e-15, "  trailing  ", []byte("  "))
	f.Add(int64(7), uint64(31_04_2023), 1234567890123456.7, "{\"a\": 1}", []byte{1, 2, 3})
	f.Add(int64(-7), uint64(0_05_2024), 9007199254740993.0, "'\\\"", []byte{'\\'})
	f.Add(int64(99), uint64(15_00_2024), 0.1, "Œ€", []byte{0x80})
	f.Add(int64(1e15), uint64(1<<63), 1e-5, "x", []byte("x"))
	f.Add(int64(-1e9), uint64(4294967295), float64(math.MaxFloat32), "é", []byte("é"))
	f.Add(int64(42), uint64(1e12), 123456789012345678.0, "", []byte(nil))
	f.Add(int64(1), uint64(2), 1e16, "z", []byte("z"))
	f.Add(int64(3), uint64(3), 100000.0, "1", []byte("1"))
	f.Add(int64(5), uint64(5), -1.0000000000000002, "5", []byte("5"))

	srv := mariaServer(f)
	ctx := context.Background()
	if err := srv.Exec(ctx, "CREATE DATABASE IF NOT EXISTS fuzzdigestdb; "+digestTableDDL("fuzzdigestdb.t")); err != nil {
		f.Fatal(err)
	}
	ins, src := digestInserter(f), sourceDB(f)
	tn := tableName{db: "fuzzdigestdb", name: "t"}
	ts := liveSchema(f, src, tn, typeOpts{tinyBool: true})
	form, err := newDigestForm(tn, ts, "mariadb")
	if err != nil {
		f.Fatal(err)
	}
	cols := strings.TrimPrefix(selectAll(ts, tn), "SELECT ")
	cols, _, _ = strings.Cut(cols, " FROM ")
	fields := make([]string, len(ts.cols))
	for j := range fields {
		fields[j] = form.field(j)
	}
	read := "SELECT " + cols + ", " + strings.Join(fields, ", ") + " FROM " + quoteName(tn) + " WHERE id = ?"
	n := len(ts.cols)

	f.Fuzz(func(t *testing.T, i int64, u uint64, fl float64, s string, b []byte) {
		nulls := uint64(i) ^ u>>3 ^ uint64(len(s))<<5
		nulls &= nulls >> 1 & (nulls >> 2) // about one column in eight
		vals := digestValues(i, u, fl, s, b, nulls)
		res, err := ins.ExecContext(ctx, "INSERT INTO "+quoteName(tn)+" VALUES (NULL"+strings.Repeat(", ?", len(vals))+")", vals...)
		if err != nil {
			t.Fatalf("insert %v: %v", vals, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]sql.RawBytes, 2*n)
		ptrs := make([]any, len(raw))
		for j := range raw {
			ptrs[j] = &raw[j]
		}
		rows, err := src.QueryContext(ctx, read, id)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if !rows.Next() {
			t.Fatalf("row %d not found: %v", id, rows.Err())
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for j := range n {
			name := ts.schema.Columns[j].Name
			var v record.Value
			if raw[j] != nil {
				if v, _, err = ts.cols[j].fromText(raw[j]); err != nil {
					t.Fatalf("%s: decode %q: %v", name, raw[j], err)
				}
			}
			got := raw[n+j]
			if v == nil {
				if string(got) != "N" {
					t.Errorf("%s: value %q is NULL to the snapshot, its field is %q", name, raw[j], got)
				}
				continue
			}
			want := form.AppendValue(nil, j, v)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: value %q (%#v): server field %q, Go field %q", name, raw[j], v, got, want)
			}
		}
	})
}

// digestOf computes in Go what Digest returns for rows.
func digestOf(f connector.DigestForm, s *record.Schema, rows [][]record.Value, q connector.DigestQuery) map[uint32]connector.DigestBucket {
	out := map[uint32]connector.DigestBucket{}
	for _, row := range rows {
		h := connector.DigestKey(connector.AppendDigestRow(nil, f, s, row, true))
		if !q.Sampled(h) {
			continue
		}
		b := q.BucketOf(h)
		if len(q.Buckets) > 0 && !containsBucket(q.Buckets, b) {
			continue
		}
		w := connector.DigestRow(connector.AppendDigestRow(nil, f, s, row, false))
		d := out[b]
		d.Bucket = b
		d.Rows++
		d.Sum += w
		out[b] = d
	}
	return out
}

func containsBucket(list []uint32, b uint32) bool {
	for _, x := range list {
		if x == b {
			return true
		}
	}
	return false
}

func rowText(row []record.Value) string {
	var b strings.Builder
	for _, v := range row {
		fmt.Fprintf(&b, "%#v\t", v)
	}
	return b.String()
}

// TestDigestBucketsEqualWhatGoComputesFromScan fills a table of every type the form
// renders (random values and edge ones) and one keyed on three columns, and checks
// that the server's bucket sums equal Go's over Scan's rows, whole and sampled, and
// that ScanBuckets returns exactly the rows of the buckets and sample asked for.
func TestDigestBucketsEqualWhatGoComputesFromScan(t *testing.T) {
	exec(t, "CREATE DATABASE digestdb; "+digestTableDDL("digestdb.t")+
		"; CREATE TABLE digestdb.k3 (s varchar(20) CHARACTER SET latin1, d datetime(3), n bigint unsigned, v text, PRIMARY KEY (s, d, n))"+
		"; CREATE TABLE digestdb.nokey (v int)")
	ins := digestInserter(t)
	for _, r := range digestEdgeRows {
		if _, err := ins.ExecContext(testCtx(t), "INSERT INTO digestdb.t "+r); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
	rng := rand.New(rand.NewSource(7))
	alphabet := []rune("ab,N'\\\" é€ひ🎉\t")
	randText := func(n int) string {
		r := make([]rune, rng.Intn(n+1))
		for k := range r {
			r[k] = alphabet[rng.Intn(len(alphabet))]
		}
		return string(r)
	}
	randFloat := func() float64 {
		switch rng.Intn(4) {
		case 0:
			return math.Float64frombits(rng.Uint64())
		case 1:
			return float64(rng.Intn(2000) - 1000)
		case 2:
			return rng.NormFloat64() * math.Pow(10, float64(rng.Intn(40)-20))
		}
		return float64(float32(rng.NormFloat64()))
	}
	for range 400 {
		b := make([]byte, rng.Intn(12))
		rng.Read(b)
		var nulls uint64
		if rng.Intn(3) == 0 {
			nulls = rng.Uint64() & rng.Uint64() & rng.Uint64()
		}
		u := uint64(rng.Intn(10000)) + uint64(rng.Intn(13))*1e4 + uint64(rng.Intn(32))*1e6
		if rng.Intn(2) == 0 {
			u = rng.Uint64()
		}
		insertDigestRow(t, ins, "digestdb.t", digestValues(rng.Int63()-rng.Int63(), u, randFloat(), randText(12), b, nulls))
	}
	for k := range 300 {
		_, err := ins.ExecContext(testCtx(t), "INSERT INTO digestdb.k3 VALUES (?, ?, ?, ?)",
			randText(6), fmt.Sprintf("%04d-%02d-%02d 10:00:00.%03d", rng.Intn(10000), 1+rng.Intn(12), 1+rng.Intn(28), rng.Intn(1000)),
			uint64(k)<<rng.Intn(44), []any{nil, randText(30)}[rng.Intn(2)])
		if err != nil && !strings.Contains(err.Error(), "Duplicate") {
			t.Fatal(err)
		}
	}
	exec(t, "INSERT INTO digestdb.nokey VALUES (1), (1), (2)")

	h := newHarness(t, "digest", "digestdb.*")
	h.tinyBool = true
	snap, err := Kind{}.OpenSnapshot(testCtx(t), h.params(connector.ModeStream))
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close(context.Background())
	dg := snap.(connector.Digester)
	tables := map[string]*record.Schema{}
	for _, s := range snap.Tables() {
		tables[s.Table] = s
	}

	if _, err := dg.DigestForm(tables["nokey"]); err == nil || !strings.Contains(err.Error(), "no primary key") {
		t.Errorf("DigestForm of a table without a key: %v", err)
	}
	for _, name := range []string{"t", "k3"} {
		sch := tables[name]
		if name == "t" {
			if k := sch.Columns[sch.Index("c_bool")].Type.Kind; k != record.KindBool {
				t.Fatalf("c_bool is %s, want bool", k)
			}
		}
		form, err := dg.DigestForm(sch)
		if err != nil {
			t.Fatal(err)
		}
		var rows [][]record.Value
		if err := snap.Scan(testCtx(t), sch, func(row []record.Value) error {
			rows = append(rows, append([]record.Value(nil), row...))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, q := range []connector.DigestQuery{
			{Bits: 4},
			{Bits: 4, SampleBelow: 1 << 31},
			{Bits: 4, SampleBelow: 1 << 29, Buckets: []uint32{0, 3, 15}},
			{Bits: 16},
			{Bits: 1, SampleBelow: math.MaxUint32},
		} {
			want := digestOf(form, sch, rows, q)
			got := map[uint32]connector.DigestBucket{}
			err := dg.Digest(testCtx(t), sch, q, func(b connector.DigestBucket) error {
				if _, dup := got[b.Bucket]; dup {
					t.Errorf("%s %+v: bucket %d twice", name, q, b.Bucket)
				}
				got[b.Bucket] = b
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %+v: the server's buckets differ from Go's over the scan", name, q)
				logged := 0
				for b := range uint32(1) << q.Bits {
					if got[b] != want[b] && logged < 5 {
						t.Logf("bucket %d: server %+v, Go %+v", b, got[b], want[b])
						logged++
					}
				}
				logFieldDiffs(t, snap, sch, form, rows)
			}
			if q.Bits == 4 && q.SampleBelow == 0 && len(want) < 16 {
				t.Errorf("%s: %d rows fill only %d of 16 buckets", name, len(rows), len(want))
			}
		}

		for _, q := range []connector.DigestQuery{
			{Bits: 4, Buckets: []uint32{1, 5, 6, 14}},
			{Bits: 4, SampleBelow: 1 << 31, Buckets: []uint32{0, 2, 3, 7, 8, 9, 15}},
			{Bits: 4},
		} {
			var want, got []string
			for _, row := range rows {
				hk := connector.DigestKey(connector.AppendDigestRow(nil, form, sch, row, true))
				if q.Sampled(hk) && containsBucket(q.Buckets, q.BucketOf(hk)) {
					want = append(want, rowText(row))
				}
			}
			if err := dg.ScanBuckets(testCtx(t), sch, q, func(row []record.Value) error {
				got = append(got, rowText(row))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			sort.Strings(want)
			sort.Strings(got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %+v: ScanBuckets gave %d rows, want %d", name, q, len(got), len(want))
			}
			if len(q.Buckets) > 0 && (len(want) == 0 || len(want) == len(rows)) {
				t.Errorf("%s %+v: %d of %d rows selected: the query does not test the selection", name, q, len(want), len(rows))
			}
		}
	}
}

// logFieldDiffs logs, for a failing digest, each field whose server text differs
// from Go's, matching the server's rows to the scanned ones by key text.
func logFieldDiffs(t *testing.T, snap connector.Snapshot, sch *record.Schema, form connector.DigestForm, rows [][]record.Value) {
	t.Helper()
	v := snap.(*verifySnapshot)
	tn, _, err := v.table(sch)
	if err != nil {
		t.Log(err)
		return
	}
	f := form.(*digestForm)
	byKey := map[string][]record.Value{}
	for _, row := range rows {
		byKey[string(connector.AppendDigestRow(nil, f, sch, row, true))] = row
	}
	fields := []string{f.text(f.key)}
	for j := range f.sql {
		fields = append(fields, f.field(j))
	}
	res, err := v.conn.QueryContext(testCtx(t), "SELECT "+strings.Join(fields, ", ")+" FROM "+quoteName(tn))
	if err != nil {
		t.Log(err)
		return
	}
	defer res.Close()
	raw := make([]sql.RawBytes, len(fields))
	ptrs := make([]any, len(raw))
	for j := range raw {
		ptrs[j] = &raw[j]
	}
	for res.Next() {
		if err := res.Scan(ptrs...); err != nil {
			t.Log(err)
			return
		}
		row, ok := byKey[string(raw[0])]
		if !ok {
			t.Logf("key %q: not among the scanned rows", raw[0])
			continue
		}
		for j, c := range sch.Columns {
			want := []byte{'N'}
			if row[j] != nil {
				want = f.AppendValue(nil, j, row[j])
			}
			if !bytes.Equal(raw[j+1], want) {
				t.Logf("key %q column %s (%#v): server %q, Go %q", raw[0], c.Name, row[j], raw[j+1], want)
			}
		}
	}
}

// TestDigestFormRefusesWhatItCannotRender: no form for a table without a primary
// key, or with a column whose server text is not proven equal to Go's; the error
// names the column and its type.
func TestDigestFormRefusesWhatItCannotRender(t *testing.T) {
	for _, c := range []struct {
		ddl, flavor, want string
	}{
		{"CREATE TABLE t (a int, b text)", "mariadb", "mysql: digest db.t: no primary key: no digest form"},
		{"CREATE TABLE t (id int PRIMARY KEY, g geometry)", "mariadb", "column g (geometry): no digest form"},
		{"CREATE TABLE t (id int PRIMARY KEY, p point)", "mariadb", "column p (point): no digest form"},
		{"CREATE TABLE t (id int PRIMARY KEY, x double)", "mysql", "column x (double): no digest form"},
		{"CREATE TABLE t (id int PRIMARY KEY, x float)", "mysql", "column x (float): no digest form"},
		{"CREATE TABLE t (id int PRIMARY KEY, x float(7,3))", "mariadb", "column x (float(7,3)): no digest form"},
		{"CREATE TABLE t (id int PRIMARY KEY, x double(10,2))", "mariadb", "column x (double(10,2)): no digest form"},
		{"CREATE TABLE t (id int PRIMARY KEY, j json)", "mysql", "column j (json): no digest form"},
		{"CREATE TABLE t (id int PRIMARY KEY, c time(3))", "mysql", "column c (time(3)): no digest form"},
		{"CREATE TABLE t (id int PRIMARY KEY, i inet4)", "mariadb", "column i (inet4): no digest form"},
		{"CREATE TABLE t (id int PRIMARY KEY, v vector(3))", "mariadb", "column v (vector(3)): no digest form"},
		{"CREATE TABLE t (id int PRIMARY KEY, s varchar(5) CHARACTER SET armscii8)", "mariadb", "column s (varchar(5)): no digest form"},
	} {
		d, err := parseDDL(c.ddl, "db")
		if err != nil {
			t.Fatalf("%s: %v", c.ddl, err)
		}
		tn := tableName{db: "db", name: "t"}
		ts, err := buildSchema(tn, d.def, typeOpts{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = newDigestForm(tn, ts, c.flavor)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s on %s: %v, want %q", c.ddl, c.flavor, err, c.want)
		}
	}
	d, err := parseDDL("CREATE TABLE t (id int PRIMARY KEY, "+digestColumns+")", "db")
	if err != nil {
		t.Fatal(err)
	}
	tn := tableName{db: "db", name: "t"}
	ts, err := buildSchema(tn, d.def, typeOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newDigestForm(tn, ts, "mariadb"); err != nil {
		t.Errorf("every column of the test table: %v", err)
	}
}

// TestDigestFieldTexts pins Go's side of fields whose server text has rules of its
// own: DECIMAL at a fixed scale, MariaDB's DOUBLE text, TIME in microseconds.
func TestDigestFieldTexts(t *testing.T) {
	dec := func(s string, scale int) string { return string(appendDecimalAt(nil, record.Decimal(s), scale)) }
	for _, c := range []struct {
		in    string
		scale int
		want  string
	}{
		{"1.5", 2, "1.50"}, {"1.50", 2, "1.50"}, {"1.500000", 2, "1.50"}, {"-0.5", 2, "-0.50"},
		{"-0.00", 2, "0.00"}, {"-0", 0, "0"}, {"007", 0, "7"}, {".5", 1, "0.5"}, {"12.", 0, "12"},
		{"1.505", 2, "?"}, {"1e3", 0, "?"}, {"NaN", 0, "?"}, {"", 0, "?"}, {"-", 0, "?"}, {"1.2.3", 2, "?"},
		{"18446744073709551615", 0, "18446744073709551615"},
		{"-12345678901234567890123456789012345.1234567890123456789012345678", 30, "-12345678901234567890123456789012345.123456789012345678901234567800"},
	} {
		if got := dec(c.in, c.scale); got != c.want {
			t.Errorf("decimal %q at scale %d: %q, want %q", c.in, c.scale, got, c.want)
		}
	}
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "-0"}, {1, "1"}, {-1.5, "-1.5"}, {0.1, "0.1"},
		{1e14, "100000000000000"}, {1e15, "1e15"}, {123456789012345678, "1.2345678901234568e17"},
		{1234567890123456.8, "1234567890123456.8"}, {1e-15, "0.000000000000001"}, {1.5e-15, "0.0000000000000015"},
		{1e-16, "1e-16"}, {5e-324, "5e-324"}, {math.MaxFloat64, "1.7976931348623157e308"}, {-1e100, "-1e100"},
		{float64(float32(3.4e38)), "3.3999999521443642e38"}, {math.NaN(), "?"}, {math.Inf(1), "?"},
	} {
		if got := string(appendMariaDouble(nil, c.in)); got != c.want {
			t.Errorf("double %v: %q, want %q", c.in, got, c.want)
		}
	}
	if got := string(appendMariaDouble(nil, float32(1.1))); got != "1.100000023841858" {
		t.Errorf("float 1.1: %q", got)
	}
	for in, want := range map[string]string{
		"-838:59:59": "-3020399000000", "12:34:56.789012": "45296789012", "-00:00:00.500000": "-500000", "00:00:00": "0", "1:2": "?",
	} {
		if got := string(appendClock(nil, in)); got != want {
			t.Errorf("time %q: %q, want %q", in, got, want)
		}
	}
	for _, v := range []record.Value{"é,a", record.JSON("é,a")} {
		if got := string(appendFramed(nil, v)); got != "4:é,a" {
			t.Errorf("framed %#v: %q", v, got)
		}
	}
	if got := string(appendHex(nil, []byte{0x0a, 0xff})); got != "0AFF" {
		t.Errorf("hex: %q", got)
	}
	if got := string(appendFramed(nil, int32(1))); got != "?" {
		t.Errorf("framed int32: %q", got)
	}
}

// TestDigestDoubleTextMatchesTheServers renders thousands of doubles and floats, from
// random bits and around the points where MariaDB switches between its two forms,
// and compares each with the server's text of the value it stored.
func TestDigestDoubleTextMatchesTheServers(t *testing.T) {
	exec(t, "CREATE DATABASE digestfloatdb; CREATE TABLE digestfloatdb.t (id int AUTO_INCREMENT PRIMARY KEY, f float, d double)")
	rng := rand.New(rand.NewSource(3))
	var vals []float64
	for range 2000 {
		vals = append(vals, math.Float64frombits(rng.Uint64()))
	}
	for e := -18; e <= 18; e++ {
		p := math.Pow(10, float64(e))
		vals = append(vals, p, -p, math.Nextafter(p, 0), math.Nextafter(p, math.Inf(1)), p*(1+rng.Float64()), float64(rng.Int63n(1e17))*p/1e17)
	}
	ins := digestInserter(t)
	var args []any
	flush := func() {
		q := "INSERT INTO digestfloatdb.t VALUES " + strings.Repeat("(NULL, ?, ?), ", len(args)/2)
		if _, err := ins.ExecContext(testCtx(t), strings.TrimSuffix(q, ", "), args...); err != nil {
			t.Fatal(err)
		}
		args = args[:0]
	}
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		var f any
		if f32 := float32(v); !math.IsInf(float64(f32), 0) {
			f = float64(f32)
		}
		if args = append(args, f, v); len(args) == 400 {
			flush()
		}
	}
	flush()
	src := sourceDB(t)
	tn := tableName{db: "digestfloatdb", name: "t"}
	ts := liveSchema(t, src, tn, typeOpts{})
	form, err := newDigestForm(tn, ts, "mariadb")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := src.QueryContext(testCtx(t), "SELECT f + 0e0, d, "+form.field(1)+", "+form.field(2)+" FROM "+quoteName(tn))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var f, d sql.NullFloat64
		var ff, fd string
		if err := rows.Scan(&f, &d, &ff, &fd); err != nil {
			t.Fatal(err)
		}
		n++
		if f.Valid {
			if want := string(form.AppendValue(nil, 1, float32(f.Float64))); ff != want {
				t.Errorf("float %v: server %q, Go %q", f.Float64, ff, want)
			}
		}
		if want := string(form.AppendValue(nil, 2, d.Float64)); fd != want {
			t.Errorf("double %v: server %q, Go %q", d.Float64, fd, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 2000 {
		t.Errorf("%d rows compared", n)
	}
}
