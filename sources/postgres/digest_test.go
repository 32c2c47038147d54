package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/record"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// digestTypesDDL has a column of every type the field form renders.
const digestTypesDDL = `CREATE TABLE %s (
 id int PRIMARY KEY, c_smallint smallint, c_int integer, c_bigint bigint, c_num102 numeric(10,2),
 c_num numeric, c_real real, c_double double precision, c_bool boolean, c_text text,
 c_varchar varchar(20), c_char char(5), c_bytea bytea, c_date date, c_time time, c_timetz timetz,
 c_ts timestamp, c_tstz timestamptz, c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb,
 c_enum dmood, c_inet inet, c_bit bit(4), c_point point, c_money money, c_intarr int[], c_textarr text[],
 c_numarr numeric(6,2)[], c_2d int8[][], c_boolarr bool[], c_uuidarr uuid[], c_decarr numeric[])`

// goBuckets computes what Digest should return from the rows Scan decodes.
func goBuckets(t *testing.T, snap connector.Snapshot, s *record.Schema, q connector.DigestQuery) map[uint32]connector.DigestBucket {
	t.Helper()
	form, err := snap.(connector.Digester).DigestForm(s)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint32]connector.DigestBucket{}
	var text []byte
	err = snap.Scan(testCtx(t), s, func(row []record.Value) error {
		text = connector.AppendDigestRow(text[:0], form, s, row, true)
		h := connector.DigestKey(text)
		if !q.Sampled(h) {
			return nil
		}
		b := out[q.BucketOf(h)]
		b.Bucket = q.BucketOf(h)
		text = connector.AppendDigestRow(text[:0], form, s, row, false)
		d := connector.DigestRow(text)
		b.Rows++
		b.Sum += d
		out[b.Bucket] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func serverBuckets(t *testing.T, snap connector.Snapshot, s *record.Schema, q connector.DigestQuery) map[uint32]connector.DigestBucket {
	t.Helper()
	out := map[uint32]connector.DigestBucket{}
	err := snap.(connector.Digester).Digest(testCtx(t), s, q, func(b connector.DigestBucket) error {
		if _, dup := out[b.Bucket]; dup {
			t.Errorf("bucket %d twice", b.Bucket)
		}
		out[b.Bucket] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func openVerify(t *testing.T, dsn string, tables ...string) connector.Snapshot {
	t.Helper()
	p := params(t, "digest", dsn, tables, config.SnapshotInitial, connector.ModeStream)
	snap, err := Kind{}.OpenSnapshot(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = snap.Close(context.Background()) })
	return snap
}

func schemaNamed(t *testing.T, snap connector.Snapshot, name string) *record.Schema {
	t.Helper()
	for _, s := range snap.Tables() {
		if s.QualifiedName() == name {
			return s
		}
	}
	t.Fatalf("table %s not in the snapshot", name)
	return nil
}

// TestDigestEqualsFieldsRenderedFromScannedValues fills a table with random and edge
// values of every type and checks that the server's bucket sums equal those Go
// computes from the decoded values, with and without a sample, and that ScanBuckets
// returns exactly the rows of the buckets asked for.
func TestDigestEqualsFieldsRenderedFromScannedValues(t *testing.T) {
	testenv.NeedServers(t)
	dsn := pgServer(t).DSN
	conn := dbConn(t, dsn)
	exec(t, conn, `CREATE TYPE dmood AS ENUM ('sad', 'happy', 'quoted "mood", too')`,
		fmt.Sprintf(digestTypesDDL, "dtyp"),
		`INSERT INTO dtyp SELECT g, (random()*65535 - 32768)::int2, (random()*4e9 - 2e9)::int4,
		 (random()*9e18 - 4.5e18)::int8, (random()*1e8 - 5e7)::numeric(10,2),
		 ((random()*1e12)::numeric(30,8) * (g - 200))::numeric,
		 (random()*1e30 - 5e29)::real, (random() - 0.5) * 10 ^ (random()*600 - 300)::int,
		 random() < 0.5, repeat(md5(g::text), (random()*5)::int) || 'é☃', left(md5(g::text), (random()*20)::int),
		 left(md5(g::text), (random()*5)::int), decode(md5(g::text), 'hex'),
		 date '1970-01-01' + (random()*200000 - 100000)::int, time '00:00' + random() * interval '24 hours',
		 (time '00:00' + random() * interval '24 hours')::timetz, timestamp '1900-01-01' + random() * interval '300 years',
		 timestamptz '1900-01-01 00:00Z' + random() * interval '300 years', random() * interval '1000 days',
		 md5(g::text)::uuid, ('{"g": ' || g || ', "a": [1, 2.50]}')::json, ('{"g": ' || g || ', "a": [1, 2.50]}')::jsonb,
		 (ARRAY['sad','happy','quoted "mood", too'])[1 + g % 3]::dmood, ('10.0.' || g % 256 || '.1')::inet,
		 (g % 16)::bit(4), point(g, -g), (g * 1.01)::money, ARRAY[g, -g, NULL], ARRAY[md5(g::text), '', 'NULL', 'a b', 'q"\', NULL, 'é'],
		 ARRAY[g / 7.0, -1]::numeric(6,2)[], ARRAY[[g, 1], [2, NULL]], ARRAY[g % 2 = 0, NULL], ARRAY[md5(g::text)::uuid],
		 ARRAY[(g / 3.0)::numeric, 1.50, 'NaN']
		 FROM generate_series(1, 600) g`,
		`INSERT INTO dtyp (id) VALUES (1000)`,
		`INSERT INTO dtyp VALUES (1001, -32768, -2147483648, -9223372036854775808, -99999999.99, 'NaN',
		 'NaN', '-0', false, '', '', '', '', 'infinity', '24:00', '00:00+14', '-infinity', 'infinity',
		 '-1 day', '00000000-0000-0000-0000-000000000000', '{ "b" : 1,"a":2 }', '{"b": 1, "a": 2, "a": 3}',
		 'sad', '::1', B'0000', '(0,0)', 0, '{}', '{}', '{}', '{}', '{}', '{}', '{}')`,
		`INSERT INTO dtyp VALUES (1002, 32767, 2147483647, 9223372036854775807, 99999999.99, '0.000',
		 'Infinity', '-Infinity', true, 'tab	line
		 , comma', 'a,b', 'a ', '\x00ff2c', '-infinity', '00:00', '23:59:59.999999+00', 'infinity',
		 '4713-01-01 00:00 BC', '1 mon 2 days 03:04:05.678', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null',
		 '[]', 'happy', '192.168.0.0/16', B'1111', '(1.5,-2.25)', -0.01, '{NULL}', '{"{}",",", " ", "\\\\"}', '{0}', '{{1},{2}}', '{t}', NULL, '{-0.000}')`,
		`INSERT INTO dtyp (id, c_num, c_double, c_real, c_date, c_ts) VALUES (1003, '-Infinity', 'Infinity', 'Infinity', '0001-01-01 BC', '9999-12-31 23:59:59.999999')`,
		`INSERT INTO dtyp (id, c_num, c_double) VALUES (1004, '1e-30', '5e-324')`,
		`INSERT INTO dtyp (id, c_num, c_double) VALUES (1005, '-123456789012345678901234567890.000100', '1.7976931348623157e308')`,
		`ANALYZE dtyp`)

	snap := openVerify(t, dsn, "public.dtyp")
	s := schemaNamed(t, snap, "public.dtyp")
	fieldsAgree(t, snap, s)
	for _, q := range []connector.DigestQuery{{Bits: 4}, {Bits: 1}, {Bits: 16}, {Bits: 4, SampleBelow: 1 << 30}} {
		want := goBuckets(t, snap, s, q)
		got := serverBuckets(t, snap, s, q)
		if !maps.Equal(got, want) {
			t.Fatalf("bits %d sample %d: server buckets differ from Go's:\n server %v\n go     %v", q.Bits, q.SampleBelow, got, want)
		}
		var rows int64
		for _, b := range got {
			rows += b.Rows
		}
		if q.SampleBelow == 0 && rows != 606 || q.SampleBelow > 0 && (rows < 80 || rows > 250) {
			t.Fatalf("bits %d sample %d: %d rows in the buckets", q.Bits, q.SampleBelow, rows)
		}
	}

	// ScanBuckets returns exactly the rows of the buckets asked for.
	q := connector.DigestQuery{Bits: 4, SampleBelow: 1 << 31, Buckets: []uint32{0, 5, 15}}
	want := goBuckets(t, snap, s, q)
	form, _ := snap.(connector.Digester).DigestForm(s)
	got := map[uint32]connector.DigestBucket{}
	var text []byte
	err := snap.(connector.Digester).ScanBuckets(testCtx(t), s, q, func(row []record.Value) error {
		text = connector.AppendDigestRow(text[:0], form, s, row, true)
		h := connector.DigestKey(text)
		if !q.Sampled(h) || !slices.Contains(q.Buckets, q.BucketOf(h)) {
			t.Errorf("row %v: bucket %d not asked for", row[0], q.BucketOf(h))
		}
		b := got[q.BucketOf(h)]
		b.Bucket = q.BucketOf(h)
		b.Rows++
		got[b.Bucket] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range q.Buckets {
		if got[b].Rows != want[b].Rows {
			t.Errorf("bucket %d: ScanBuckets gave %d rows, the sample holds %d", b, got[b].Rows, want[b].Rows)
		}
	}
}

func TestDigestFormRefusesWhatItCannotRender(t *testing.T) {
	testenv.NeedServers(t)
	dsn := pgServer(t).DSN
	conn := dbConn(t, dsn)
	exec(t, conn, `CREATE TABLE dnokey (a int, b text)`, `CREATE TABLE darr (id int PRIMARY KEY, tags float8[])`)
	snap := openVerify(t, dsn, "public.dnokey", "public.darr")
	dg := snap.(connector.Digester)
	for name, want := range map[string]string{"public.dnokey": "has no key", "public.darr": "column tags (double precision[]): no digest form"} {
		_, err := dg.DigestForm(schemaNamed(t, snap, name))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: DigestForm error %v, want one saying %q", name, err, want)
		}
	}
}

// FuzzDigestFieldMatchesServer writes fuzzed values into the server and checks that
// the field the server renders for each equals the one Go renders from the value the
// snapshot decodes: the field form against the database's own text output.
func FuzzDigestFieldMatchesServer(f *testing.F) {
	f.Add(int64(0), 0.0, "0", "", "")
	f.Add(int64(-1), math.Copysign(0, -1), "-0.00100", "é", "{}")
	f.Add(int64(math.MaxInt64), math.Inf(1), "NaN", "a,b\\N\t", `{"b":1,"a":[1.0,2e3]}`)
	f.Add(int64(math.MinInt64), math.SmallestNonzeroFloat64, "123456789012345678901234567890.5", " x ", `"\u00e9"`)
	f.Add(int64(1)<<40, math.MaxFloat64, "-Infinity", "\x01", "[1, 2, {\"c\": null}]")
	f.Add(int64(86400000000), 1e21, "1e-5", "line\nbreak", "1E+2")
	f.Fuzz(func(t *testing.T, i int64, fl float64, dec, text, js string) {
		if testing.Short() {
			t.Skip("needs PostgreSQL")
		}
		dsn := pgServer(t).DSN
		conn := dbConn(t, dsn)
		exec(t, conn, `CREATE TABLE IF NOT EXISTS dfuzz (id int PRIMARY KEY, i8 int8, f8 float8, f4 float4,
		 num numeric, num52 numeric(30,5), t text, ch char(8), b bytea, ta text[], j jsonb, js json, d date, ts timestamp, tm time)`,
			`TRUNCATE dfuzz`)
		text = strings.ToValidUTF8(strings.ReplaceAll(text, "\x00", ""), "?")
		var jsv any
		if json.Valid([]byte(js)) {
			jsv = js
		}
		day := i % 2000000
		us := i % (200000 * 365 * 86400 * 1000000)
		_, err := conn.Exec(testCtx(t), `INSERT INTO dfuzz VALUES (1, $1::int8, $2::float8, $8::float4, $3::text::numeric, round($3::text::numeric, 5), $4::text, left($4::text, 8), convert_to($4::text, 'UTF8'), ARRAY[$4::text, NULL, 'x'],
		 $5::text::jsonb, $5::text::json,
		 date '1970-01-01' + $6::int, timestamp 'epoch' + $7::int8 * interval '1 microsecond', time '00:00' + ($7::int8 % 86400000001) * interval '1 microsecond')`,
			i, fl, dec, text, jsv, day, us, float32(fl))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22") {
			t.Skipf("the server refuses the value: %v", err) // not a number, out of range: nothing to compare
		} else if err != nil {
			t.Fatal(err)
		}
		snap := openVerify(t, dsn, "public.dfuzz")
		s := schemaNamed(t, snap, "public.dfuzz")
		fieldsAgree(t, snap, s)
	})
}

// fieldsAgree checks, row by row and column by column, that the field the server
// renders equals the one Go renders from the value Scan decodes.
func fieldsAgree(t *testing.T, snap connector.Snapshot, s *record.Schema) {
	t.Helper()
	v := snap.(*verifySnapshot)
	ff, err := v.DigestForm(s)
	if err != nil {
		t.Fatal(err)
	}
	form := ff.(*fieldForm)
	server := map[string][]string{}
	rows, err := v.conn.Query(testCtx(t), "SELECT "+form.text(s, true)+", "+strings.Join(form.fields, ", ")+" FROM "+pgx.Identifier{s.Namespace, s.Table}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		vals := make([]string, len(s.Columns)+1)
		dest := make([]any, len(vals))
		for k := range vals {
			dest[k] = &vals[k]
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		server[vals[0]] = vals[1:]
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	bad := 0
	err = snap.Scan(testCtx(t), s, func(row []record.Value) error {
		key := string(connector.AppendDigestRow(nil, form, s, row, true))
		want, ok := server[key]
		if !ok {
			t.Errorf("key %q: Go renders a key the server does not", key)
			bad++
			return nil
		}
		for k, c := range s.Columns {
			got := "N"
			if row[k] != nil {
				got = string(form.AppendValue(nil, k, row[k]))
			}
			if got != want[k] && bad < 20 {
				bad++
				t.Errorf("key %s column %s value %#v: Go renders %q, the server %q", key, c.Name, row[k], got, want[k])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
