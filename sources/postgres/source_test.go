package postgres

import (
	"context"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/record"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

const typesRow = `-32768, 2147483647, -9223372036854775808, 12345678.90,
 123456789012345678901234567890.123456789, 'NaN', 'NaN', 'Infinity', '-Infinity', true,
 E'tab\there\nnewline \\ backslash', 'varchar', 'ab', '\x00010aff', '2024-02-29', '12:34:56.789',
 '12:34:56.789+05:30', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123456+02', 'infinity',
 '1 day 2 hours 3.5 seconds', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}',
 '{"b": 1, "a": "x"}', 'happy', '{1,NULL,3}', '{"a","b c","NULL",NULL}', '192.168.0.1/24',
 '10.0.0.0/8', B'1010', B'101', '(1,2)', NULL`

func expectedTypes(t *testing.T) map[string]any {
	uuid, err := record.ParseUUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"c_smallint": int16(-32768),
		"c_int":      int32(2147483647),
		"c_bigint":   int64(math.MinInt64),
		"c_num102":   record.Decimal("12345678.90"),
		"c_num":      record.Decimal("123456789012345678901234567890.123456789"),
		"c_numnan":   record.Decimal("NaN"),
		"c_real":     float32(math.NaN()),
		"c_double":   math.Inf(1),
		"c_dinf":     math.Inf(-1),
		"c_bool":     true,
		"c_text":     "tab\there\nnewline \\ backslash",
		"c_varchar":  "varchar",
		"c_char":     "ab   ",
		"c_bytea":    []byte{0, 1, 0x0a, 0xff},
		"c_date":     record.DateOf(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)),
		"c_time":     record.Time((12*3600+34*60+56)*1000000 + 789000),
		"c_timetz":   "12:34:56.789+05:30",
		"c_ts":       record.Timestamp(time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC).UnixMicro()),
		"c_tstz":     record.Timestamp(time.Date(2024, 1, 2, 1, 4, 5, 123456000, time.UTC).UnixMicro()),
		"c_tsinf":    record.TimestampInfinity,
		"c_interval": "P1DT2H3.5S",
		"c_uuid":     uuid,
		"c_json":     record.JSON(`{"a": [1, 2]}`),
		"c_jsonb":    record.JSON(`{"a": "x", "b": 1}`),
		"c_enum":     "happy",
		"c_intarr":   []record.Value{int32(1), nil, int32(3)},
		"c_textarr":  []record.Value{"a", "b c", "NULL", nil},
		"c_inet":     "192.168.0.1/24",
		"c_cidr":     "10.0.0.0/8",
		"c_bit":      "1010",
		"c_varbit":   "101",
		"c_point":    "(1,2)",
		"c_null":     nil,
	}
}

func checkTypes(t *testing.T, what string, r record.Record, id int32) {
	t.Helper()
	got := values(r)
	want := expectedTypes(t)
	want["id"] = id
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: column %s missing", what, name)
			continue
		}
		if wf, ok := w.(float32); ok && math.IsNaN(float64(wf)) {
			if gf, ok := g.(float32); !ok || !math.IsNaN(float64(gf)) {
				t.Errorf("%s: %s = %#v, want float32 NaN", what, name, g)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: %s = %#v (%T), want %#v (%T)", what, name, g, g, w, w)
		}
	}
}

func TestEveryTypeSnapshotAndStream(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TYPE mood AS ENUM ('sad', 'happy')`, `CREATE TABLE typ (
 id int PRIMARY KEY, c_smallint smallint, c_int integer, c_bigint bigint, c_num102 numeric(10,2),
 c_num numeric, c_numnan numeric, c_real real, c_double double precision, c_dinf double precision,
 c_bool boolean, c_text text, c_varchar varchar(20), c_char char(5), c_bytea bytea, c_date date,
 c_time time, c_timetz timetz, c_ts timestamp, c_tstz timestamptz, c_tsinf timestamptz,
 c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb, c_enum mood, c_intarr int[],
 c_textarr text[], c_inet inet, c_cidr cidr, c_bit bit(4), c_varbit varbit, c_point point, c_null text)`,
		`INSERT INTO typ VALUES (1, `+typesRow+`)`)

	p := params(t, "types", pgServer(t).DSN, []string{"public.typ"}, config.SnapshotInitial, connector.ModeStream)
	src := openSource(t, p)
	r := startRead(t, src, nil)
	recs := r.wait(t, 1)
	if recs[0].Op != record.OpRead {
		t.Fatalf("first record op %c, want r", recs[0].Op)
	}
	checkTypes(t, "snapshot", recs[0], 1)
	sch := recs[0].Schema
	wantTypes := map[string]string{
		"id": "int32", "c_num102": "decimal(10,2)", "c_num": "decimal_text", "c_intarr": "list<int32>",
		"c_textarr": "list<string>", "c_point": "string", "c_tstz": "timestamptz", "c_ts": "timestamp", "c_jsonb": "json",
	}
	for name, typ := range wantTypes {
		c := sch.Columns[sch.Index(name)]
		if c.Type.String() != typ {
			t.Errorf("column %s type %s, want %s", name, c.Type, typ)
		}
	}
	if c := sch.Columns[sch.Index("c_num102")]; c.SourceType != "numeric(10,2)" {
		t.Errorf("c_num102 source type %q", c.SourceType)
	}
	if !sch.Columns[0].Key || sch.Columns[0].Nullable || sch.Columns[1].Key || !sch.Columns[1].Nullable {
		t.Errorf("key/nullable flags wrong: %+v %+v", sch.Columns[0], sch.Columns[1])
	}
	if recs[0].TxID == "" || recs[0].CommitTS.IsZero() {
		t.Errorf("snapshot record lacks txid or commit time: %q %v", recs[0].TxID, recs[0].CommitTS)
	}

	r.waitPhase(t, "streaming")
	exec(t, conn, `INSERT INTO typ VALUES (2, `+typesRow+`)`)
	recs = r.wait(t, 2)
	if recs[1].Op != record.OpCreate {
		t.Fatalf("streamed op %c, want c", recs[1].Op)
	}
	checkTypes(t, "stream", recs[1], 2)
	if recs[1].Schema != sch {
		t.Error("the stream built a new schema for an unchanged table")
	}
	if recs[1].CommitTS.Location() != time.UTC || recs[1].CommitTS.Nanosecond()%1000 != 0 {
		t.Errorf("commit ts %v not UTC micros", recs[1].CommitTS)
	}
}

func TestChangesStreamInOrder(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn,
		`CREATE TABLE chg (id int PRIMARY KEY, v text, big text)`,
		`ALTER TABLE chg ALTER COLUMN big SET STORAGE EXTERNAL`,
		`CREATE TABLE fullt (id int, v text)`,
		`ALTER TABLE fullt REPLICA IDENTITY FULL`)
	p := params(t, "changes", pgServer(t).DSN, []string{"public.chg", "public.fullt"}, config.SnapshotNever, connector.ModeStream)
	src := openSource(t, p)
	r := startRead(t, src, nil)
	r.waitPhase(t, "streaming")
	big := strings.Repeat("0123456789", 1000)
	exec(t, conn,
		`INSERT INTO chg VALUES (1, 'a', '`+big+`')`,
		`INSERT INTO chg VALUES (2, 'b', NULL)`,
		`UPDATE chg SET v = 'a2' WHERE id = 1`,
		`UPDATE chg SET id = 10 WHERE id = 2`,
		`DELETE FROM chg WHERE id = 1`,
		`INSERT INTO fullt VALUES (1, 'x')`,
		`UPDATE fullt SET v = 'y'`,
		`DELETE FROM fullt`,
		`BEGIN`, `INSERT INTO chg VALUES (3, 'c', NULL)`, `INSERT INTO chg VALUES (4, 'd', NULL)`, `COMMIT`,
		`TRUNCATE chg`,
		`ALTER TABLE chg ADD COLUMN extra int`,
		`INSERT INTO chg VALUES (5, 'e', NULL, 7)`)
	recs := r.wait(t, 13)
	type exp struct {
		op     record.Op
		table  string
		values map[string]any // checked in the row image (Before for d)
	}
	want := []exp{
		{'c', "chg", map[string]any{"id": int32(1), "v": "a", "big": big}},
		{'c', "chg", map[string]any{"id": int32(2), "v": "b", "big": nil}},
		{'u', "chg", map[string]any{"id": int32(1), "v": "a2", "big": nil}},
		{'d', "chg", map[string]any{"id": int32(2), "v": nil, "big": nil}},
		{'c', "chg", map[string]any{"id": int32(10), "v": "b", "big": nil}},
		{'d', "chg", map[string]any{"id": int32(1), "v": nil, "big": nil}},
		{'c', "fullt", map[string]any{"id": int32(1), "v": "x"}},
		{'u', "fullt", map[string]any{"id": int32(1), "v": "y"}},
		{'d', "fullt", map[string]any{"id": int32(1), "v": "y"}},
		{'c', "chg", map[string]any{"id": int32(3), "v": "c"}},
		{'c', "chg", map[string]any{"id": int32(4), "v": "d"}},
		{'t', "chg", map[string]any{"id": nil, "v": nil, "big": nil}},
		{'c', "chg", map[string]any{"id": int32(5), "v": "e", "big": nil, "extra": int32(7)}},
	}
	if len(recs) != len(want) {
		for _, r := range recs {
			t.Logf("%c %s %v", r.Op, r.Table(), values(r))
		}
		t.Fatalf("got %d records, want %d", len(recs), len(want))
	}
	for i, w := range want {
		got := recs[i]
		if got.Op != w.op || got.Table() != w.table {
			t.Fatalf("record %d: %c %s, want %c %s", i, got.Op, got.Table(), w.op, w.table)
		}
		vals := values(got)
		for k, v := range w.values {
			if !reflect.DeepEqual(vals[k], v) {
				t.Errorf("record %d (%c): %s = %#v, want %#v", i, got.Op, k, vals[k], v)
			}
		}
		if i > 0 && recs[i-1].Pos.Compare(got.Pos) >= 0 {
			t.Errorf("position %d (%s) not after %d (%s)", i, src.DescribePosition(got.Pos), i-1, src.DescribePosition(recs[i-1].Pos))
		}
	}
	// The unchanged TOAST column is named, and null in After.
	if u := recs[2].Unchanged; len(u) != 1 || u[0] != "big" {
		t.Errorf("update Unchanged = %v, want [big]", u)
	}
	if recs[2].Before != nil {
		t.Errorf("update without key change has a Before image: %v", recs[2].Before)
	}
	// The key-changing update is a d then a c of one transaction, numbered 0, 1.
	lsnD, seqD, _ := parseStreamPos(recs[3].Pos)
	lsnC, seqC, _ := parseStreamPos(recs[4].Pos)
	if lsnD != lsnC || seqD != 0 || seqC != 1 || recs[3].TxID != recs[4].TxID {
		t.Errorf("key change: d at %s, c at %s", src.DescribePosition(recs[3].Pos), src.DescribePosition(recs[4].Pos))
	}
	// REPLICA IDENTITY FULL: full before images, and every column is the key.
	if b := recs[7].Before; len(b) != 2 || b[0] != int32(1) || b[1] != "x" {
		t.Errorf("full update Before = %#v", b)
	}
	if ks := recs[7].Schema.KeyIndexes(); len(ks) != 2 {
		t.Errorf("fullt key columns %v, want both", ks)
	}
	// One transaction, two records with sequence numbers 0 and 1.
	l1, s1, _ := parseStreamPos(recs[9].Pos)
	l2, s2, _ := parseStreamPos(recs[10].Pos)
	if l1 != l2 || s1 != 0 || s2 != 1 {
		t.Errorf("transaction positions %s, %s", src.DescribePosition(recs[9].Pos), src.DescribePosition(recs[10].Pos))
	}
	// Truncate: every column null.
	if recs[11].Before != nil || len(recs[11].After) != 3 {
		t.Errorf("truncate images: before %v after %v", recs[11].Before, recs[11].After)
	}
	// ADD COLUMN: a new schema version, and the earlier records keep theirs.
	s1v, s2v := recs[10].Schema, recs[12].Schema
	if s1v == s2v || s2v.Version != s1v.Version+1 || len(s2v.Columns) != 4 || s1v.Fingerprint() == s2v.Fingerprint() {
		t.Errorf("schema after ADD COLUMN: version %d -> %d, columns %d", s1v.Version, s2v.Version, len(s2v.Columns))
	}
	if recs[0].Schema != s1v {
		t.Error("records of one schema version do not share the *Schema")
	}
}

func TestRestartFromAckedPositionSkipsDeliveredLosesNothing(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE rs (id int PRIMARY KEY)`, `INSERT INTO rs SELECT generate_series(1, 3)`)
	p := params(t, "restart", pgServer(t).DSN, []string{"public.rs"}, config.SnapshotInitial, connector.ModeStream)
	src := openSource(t, p)
	r := startRead(t, src, nil)
	recs := r.wait(t, 3)
	if last := recs[2].Pos; len(last) != snapshotDoneLen {
		t.Fatalf("last snapshot record lacks the completion marker: %s", src.DescribePosition(last))
	}
	r.waitPhase(t, "streaming")
	exec(t, conn, `BEGIN`, `INSERT INTO rs VALUES (4)`, `INSERT INTO rs VALUES (5)`, `COMMIT`, `INSERT INTO rs VALUES (6)`)
	recs = r.wait(t, 6)
	// Ack the middle of the two-row transaction: nothing of it may be confirmed.
	before := slotConfirmed(t, conn, "connectd_restart")
	if err := src.Ack(testCtx(t), recs[3].Pos); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	txLSN, _, _ := parseStreamPos(recs[3].Pos)
	if c := slotConfirmed(t, conn, "connectd_restart"); c > txLSN || c < before {
		t.Fatalf("confirmed_flush_lsn %s after acking half of the transaction at %s", c, txLSN)
	}
	r.stop()

	exec(t, conn, `INSERT INTO rs VALUES (7)`)
	src2 := openSource(t, p)
	r2 := startRead(t, src2, recs[3].Pos)
	r2.wait(t, 3)
	time.Sleep(200 * time.Millisecond)
	got := r2.snapshot()
	ids := []any{}
	for _, g := range got {
		ids = append(ids, values(g)["id"])
	}
	if !reflect.DeepEqual(ids, []any{int32(5), int32(6), int32(7)}) {
		t.Fatalf("after restart got ids %v, want [5 6 7]", ids)
	}
	if got[0].Pos.Compare(recs[4].Pos) != 0 || got[1].Pos.Compare(recs[5].Pos) != 0 {
		t.Errorf("replayed positions differ: %s vs %s", src.DescribePosition(got[0].Pos), src.DescribePosition(recs[4].Pos))
	}
	r2.stop()

	// A restart at the completed snapshot streams on without a new snapshot.
	src3 := openSource(t, p)
	r3 := startRead(t, src3, recs[2].Pos)
	got = r3.wait(t, 4)
	if got[0].Op != record.OpCreate || values(got[0])["id"] != int32(4) {
		t.Errorf("restart at the snapshot's end began with %c %v", got[0].Op, values(got[0]))
	}
}

// Without a state store the snapshot cannot be resumed: it is taken again.
func TestInterruptedSnapshotWithoutStateIsTakenAgainWithNextEpoch(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE snap_a (id int PRIMARY KEY)`, `CREATE TABLE snap_b (id int PRIMARY KEY, t text)`,
		`INSERT INTO snap_a SELECT generate_series(1, 5000)`, `INSERT INTO snap_b SELECT i, 'row ' || i FROM generate_series(1, 3000) i`)
	p := params(t, "resnap", pgServer(t).DSN, []string{"public.snap_*"}, config.SnapshotInitial, connector.ModeStream)
	interrupted := make(record.Position, snapshotPosLen)
	putSnapshotPos(interrupted, 1, 0, 0, 2048)
	src := openSource(t, p)
	r := startRead(t, src, interrupted)
	recs := r.wait(t, 8000)
	for i, rec := range recs {
		sp, ok := parseSnapshotPos(rec.Pos)
		if !ok || sp.epoch != 2 || rec.Op != record.OpRead {
			t.Fatalf("record %d: %c at %s, want r in epoch 2", i, rec.Op, src.DescribePosition(rec.Pos))
		}
		if i > 0 && recs[i-1].Pos.Compare(rec.Pos) >= 0 {
			t.Fatalf("positions not increasing at %d", i)
		}
	}
	if sp, _ := parseSnapshotPos(recs[4999].Pos); sp.table != 0 || sp.row != 5000 {
		t.Errorf("record 4999 at %s", src.DescribePosition(recs[4999].Pos))
	}
	if got := src.DescribePosition(recs[7999].Pos); got != "snapshot epoch 2 table public.snap_b chunk 0 row 3000 (snapshot complete)" {
		t.Errorf("last position %q", got)
	}
	if v := values(recs[7999]); v["t"] != "row 3000" {
		t.Errorf("last row %v", v)
	}
}

func TestInitialOnlyStopsAfterSnapshotAndLeavesNoSlot(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE once (id int PRIMARY KEY)`, `INSERT INTO once SELECT generate_series(1, 10)`)
	p := params(t, "once", pgServer(t).DSN, []string{"public.once"}, config.SnapshotInitialOnly, connector.ModeStream)
	src := openSource(t, p)
	r := startRead(t, src, nil)
	if err := r.result(t); err != nil {
		t.Fatal(err)
	}
	recs := r.snapshot()
	if len(recs) != 10 {
		t.Fatalf("got %d records", len(recs))
	}
	src.Close(context.Background())
	// The temporary slot goes when its walsender exits, just after the close.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(testCtx(t), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'connectd_once'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot left behind")
		}
	}
	// Restarted at the completed snapshot: nothing more to do.
	r2 := startRead(t, openSource(t, p), recs[9].Pos)
	if err := r2.result(t); err != nil || len(r2.snapshot()) != 0 {
		t.Fatalf("second run: %v, %d records", err, len(r2.snapshot()))
	}
}

func TestSyncReturnsOnceCaughtUp(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE sy (id int PRIMARY KEY)`, `INSERT INTO sy SELECT generate_series(1, 100)`)
	// A sync with a snapshot: the snapshot covers everything, so it returns after it.
	ps := params(t, "sync", pgServer(t).DSN, []string{"public.sy"}, config.SnapshotInitial, connector.ModeSync)
	r := startRead(t, openSource(t, ps), nil)
	if err := r.result(t); err != nil {
		t.Fatal(err)
	}
	snap := r.snapshot()
	if len(snap) != 100 {
		t.Fatalf("sync snapshot delivered %d records", len(snap))
	}
	r.stop()
	// Changes since: the next sync streams them and returns.
	exec(t, conn, `INSERT INTO sy VALUES (101)`, `UPDATE sy SET id = 102 WHERE id = 101`, `DELETE FROM sy WHERE id <= 10`)
	r2 := startRead(t, openSource(t, ps), snap[99].Pos)
	if err := r2.result(t); err != nil {
		t.Fatal(err)
	}
	got := r2.snapshot()
	if len(got) != 13 || got[0].Op != record.OpCreate || got[12].Op != record.OpDelete {
		t.Fatalf("sync streamed %d records", len(got))
	}
	r2.stop()
	// Nothing new, and nothing acked: the server resends, every record is skipped,
	// and the sync still returns.
	r3 := startRead(t, openSource(t, ps), got[12].Pos)
	if err := r3.result(t); err != nil {
		t.Fatal(err)
	}
	if n := len(r3.snapshot()); n != 0 {
		t.Fatalf("an up-to-date sync emitted %d records", n)
	}
}

func TestAckAdvancesSlotNeverBeyondAcked(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE ak (id int PRIMARY KEY)`, `CREATE TABLE ak_other (id int)`)
	p := params(t, "ack", pgServer(t).DSN, []string{"public.ak"}, config.SnapshotNever, connector.ModeStream)
	src := openSource(t, p)
	r := startRead(t, src, nil)
	r.waitPhase(t, "streaming")
	exec(t, conn, `INSERT INTO ak VALUES (1)`, `INSERT INTO ak VALUES (2)`)
	recs := r.wait(t, 2)
	lsnA, _, _ := parseStreamPos(recs[0].Pos)
	lsnB, _, _ := parseStreamPos(recs[1].Pos)
	if c := slotConfirmed(t, conn, "connectd_ack"); c > lsnA {
		t.Fatalf("confirmed %s before any ack, past the first commit %s", c, lsnA)
	}
	if err := src.Ack(testCtx(t), recs[0].Pos); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "connectd_ack", func(c pglogrepl.LSN) bool { return c > lsnA })
	// WAL elsewhere must not let the slot pass the unacked transaction.
	exec(t, conn, `INSERT INTO ak_other VALUES (1)`)
	time.Sleep(500 * time.Millisecond)
	if c := slotConfirmed(t, conn, "connectd_ack"); c > lsnB {
		t.Fatalf("confirmed %s beyond the unacked commit at %s", c, lsnB)
	}
	if err := src.Ack(testCtx(t), recs[1].Pos); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, "connectd_ack", func(c pglogrepl.LSN) bool { return c > lsnB })
	// Everything acked: WAL of unpublished tables lets an idle slot advance.
	exec(t, conn, `INSERT INTO ak_other VALUES (2)`)
	var s string
	if err := conn.QueryRow(testCtx(t), `SELECT pg_current_wal_lsn()::text`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	now, _ := pglogrepl.ParseLSN(s)
	waitConfirmed(t, conn, "connectd_ack", func(c pglogrepl.LSN) bool { return c >= now })
}

func waitConfirmed(t *testing.T, conn *pgx.Conn, slot string, ok func(pglogrepl.LSN) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var c pglogrepl.LSN
	for time.Now().Before(deadline) {
		c = slotConfirmed(t, conn, slot)
		if ok(c) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("slot %s confirmed_flush_lsn stuck at %s", slot, c)
}

func TestTableWithoutKeyIsAPermanentErrorWithFix(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE nokey (a int)`)
	p := params(t, "nokey", pgServer(t).DSN, []string{"public.nokey"}, config.SnapshotInitial, connector.ModeStream)
	r := startRead(t, openSource(t, p), nil)
	err := r.result(t)
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), `ALTER TABLE "public"."nokey" REPLICA IDENTITY FULL;`) {
		t.Fatalf("want a permanent error with the fix, got %v", err)
	}
	// A name without wildcards must match; a glob may match nothing yet.
	p2 := params(t, "nomatch", pgServer(t).DSN, []string{"public.nope"}, config.SnapshotInitial, connector.ModeStream)
	err = startRead(t, openSource(t, p2), nil).result(t)
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), `"public.nope"`) {
		t.Fatalf("want a permanent error naming the pattern, got %v", err)
	}
}

func TestResumeWithoutSlotIsPermanent(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE gone (id int PRIMARY KEY)`)
	p := params(t, "gone", pgServer(t).DSN, []string{"public.gone"}, config.SnapshotInitial, connector.ModeStream)
	pos := make(record.Position, streamPosLen)
	putStreamPos(pos, 0x1000000, 0)
	err := startRead(t, openSource(t, p), pos).result(t)
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "connectd offsets reset") {
		t.Fatalf("want a permanent error telling to reset offsets, got %v", err)
	}
}

func TestCheckAndDiscover(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE chk (id bigint PRIMARY KEY, amount numeric(12,3) NOT NULL, note text)`, `CREATE TABLE chk_nokey (a int)`)
	ctx := testCtx(t)
	p := params(t, "check", pgServer(t).DSN, []string{"public.chk"}, config.SnapshotInitial, connector.ModeStream)
	for _, res := range (Kind{}).Check(ctx, p) {
		if !res.OK {
			t.Errorf("check %s failed: %s (fix: %s)", res.Name, res.Detail, res.Fix)
		}
	}
	bad := params(t, "check", pgServer(t).DSN, []string{"public.chk_nokey", "public.missing"}, config.SnapshotInitial, connector.ModeStream)
	byName := map[string]connector.CheckResult{}
	for _, res := range (Kind{}).Check(ctx, bad) {
		byName[res.Name] = res
	}
	if r := byName["postgres: replica identity public.chk_nokey"]; r.OK || !strings.Contains(r.Fix, "REPLICA IDENTITY FULL") {
		t.Errorf("replica identity check: %+v", r)
	}
	if r, ok := byName["postgres: tables public.missing"]; !ok || r.OK {
		t.Errorf("pattern check: %+v", r)
	}
	schemas, err := Kind{}.Discover(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(schemas) != 1 || schemas[0].QualifiedName() != "public.chk" || len(schemas[0].Columns) != 3 {
		t.Fatalf("discover: %+v", schemas)
	}
	c := schemas[0].Columns
	if !c[0].Key || c[0].Type.Kind != record.KindInt64 || c[1].Type.String() != "decimal(12,3)" || c[1].Nullable || !c[2].Nullable {
		t.Errorf("discovered columns %+v", c)
	}
	wrong := params(t, "check", "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2", []string{"public.chk"}, "", connector.ModeStream)
	res := (Kind{}).Check(ctx, wrong)
	if len(res) != 1 || res[0].OK || res[0].Fix == "" {
		t.Errorf("check against a closed port: %+v", res)
	}
}

func TestCheckReportsWalLevelReplica(t *testing.T) {
	testenv.NeedServers(t)
	ctx := testCtx(t)
	rpg, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{WalLevel: "replica"})
	if err != nil {
		t.Fatal(err)
	}
	defer rpg.Stop()
	if err := rpg.Exec(ctx, `CREATE TABLE w (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	p := params(t, "wal", rpg.DSN, []string{"public.w"}, config.SnapshotInitial, connector.ModeStream)
	found := false
	for _, res := range (Kind{}).Check(ctx, p) {
		if res.Name == "postgres: wal_level" {
			found = true
			if res.OK || !strings.Contains(res.Detail, "replica") || !strings.Contains(res.Fix, "ALTER SYSTEM SET wal_level = logical") {
				t.Errorf("wal_level check: %+v", res)
			}
		}
	}
	if !found {
		t.Fatal("no wal_level check")
	}
	err = startRead(t, openSource(t, p), nil).result(t)
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "wal_level") {
		t.Fatalf("Read on wal_level=replica: %v", err)
	}
}

func TestHeartbeatAdvancesAnIdleSlot(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE hb (id int PRIMARY KEY)`)
	p := params(t, "hb", pgServer(t).DSN, []string{"public.hb"}, config.SnapshotNever, connector.ModeStream)
	p.Config.Config.(*Config).Heartbeat = 100 * time.Millisecond
	// A second slot sees the heartbeat messages themselves.
	exec(t, conn, `SELECT pg_create_logical_replication_slot('hb_watch', 'test_decoding')`)
	t.Cleanup(func() { conn.Exec(context.Background(), `SELECT pg_drop_replication_slot('hb_watch')`) })
	r := startRead(t, openSource(t, p), nil)
	r.waitPhase(t, "streaming")
	start := slotConfirmed(t, conn, "connectd_hb")
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; n == 0; {
		err := conn.QueryRow(testCtx(t), `SELECT count(*) FROM pg_logical_slot_peek_changes('hb_watch', NULL, NULL)
WHERE data LIKE 'message:%connectd_heartbeat%'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat message in the WAL")
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitConfirmed(t, conn, "connectd_hb", func(c pglogrepl.LSN) bool { return c > start })
	if n := len(r.snapshot()); n != 0 {
		t.Fatalf("heartbeats produced %d records", n)
	}
}

func TestPartitionedTableIsReadAndStreamedUnderItsRoot(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)`,
		`CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100)`,
		`CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (100) TO (200)`,
		`INSERT INTO parted VALUES (1, 'a'), (150, 'b')`)
	p := params(t, "parted", pgServer(t).DSN, []string{"public.parted*"}, config.SnapshotInitial, connector.ModeStream)
	r := startRead(t, openSource(t, p), nil)
	r.waitPhase(t, "streaming")
	exec(t, conn, `INSERT INTO parted VALUES (2, 'c'), (160, 'd')`, `UPDATE parted SET v = 'e' WHERE id = 150`)
	recs := r.wait(t, 5)
	for i, rec := range recs {
		if rec.Table() != "parted" {
			t.Errorf("record %d is for table %s, want parted", i, rec.Table())
		}
	}
	if recs[0].Op != record.OpRead || recs[1].Op != record.OpRead || recs[2].Op != record.OpCreate || recs[4].Op != record.OpUpdate {
		t.Errorf("ops %c %c %c %c %c", recs[0].Op, recs[1].Op, recs[2].Op, recs[3].Op, recs[4].Op)
	}
	if recs[2].Schema != recs[0].Schema {
		t.Error("stream and snapshot of the partitioned table use different schemas")
	}
}

func TestUnselectedTablesOfAWiderPublicationAreIgnored(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE wide_a (id int PRIMARY KEY)`, `CREATE TABLE wide_b (id int PRIMARY KEY)`,
		`CREATE PUBLICATION connectd_wide FOR ALL TABLES`)
	t.Cleanup(func() { conn.Exec(context.Background(), `DROP PUBLICATION connectd_wide`) })
	p := params(t, "wide", pgServer(t).DSN, []string{"public.wide_a"}, config.SnapshotNever, connector.ModeStream)
	r := startRead(t, openSource(t, p), nil)
	r.waitPhase(t, "streaming")
	exec(t, conn, `BEGIN`, `INSERT INTO wide_b VALUES (1)`, `INSERT INTO wide_a VALUES (1)`, `COMMIT`, `INSERT INTO wide_b VALUES (2)`, `INSERT INTO wide_a VALUES (2)`)
	r.wait(t, 2)
	time.Sleep(200 * time.Millisecond)
	recs := r.snapshot()
	if len(recs) != 2 || recs[0].Table() != "wide_a" || recs[1].Table() != "wide_a" {
		t.Fatalf("got %d records (first %s)", len(recs), recs[0].Table())
	}
	if _, seq, _ := parseStreamPos(recs[0].Pos); seq != 0 {
		t.Errorf("ignored change took sequence numbers: %d", seq)
	}
}

func TestDroppedConnectionIsTransient(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE drop_conn (id int PRIMARY KEY)`)
	p := params(t, "dropconn", pgServer(t).DSN, []string{"public.drop_conn"}, config.SnapshotNever, connector.ModeStream)
	r := startRead(t, openSource(t, p), nil)
	r.waitPhase(t, "streaming")
	exec(t, conn, `INSERT INTO drop_conn VALUES (1)`)
	recs := r.wait(t, 1)
	exec(t, conn, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'connectd_dropconn'`)
	err := r.result(t)
	if err == nil || connector.IsPermanent(err) {
		t.Fatalf("want a transient error, got %v", err)
	}
	r.stop()
	exec(t, conn, `INSERT INTO drop_conn VALUES (2)`)
	var r2 *reader
	// The slot may still be marked active for a moment; a restart retries as the
	// pipeline would.
	for attempt := 0; ; attempt++ {
		r2 = startRead(t, openSource(t, p), recs[0].Pos)
		got := r2.snapshotAfter(t, 1)
		if got != nil {
			if v := values(got[0])["id"]; len(got) != 1 || v != int32(2) {
				t.Fatalf("after restart: %d records, first id %v", len(got), v)
			}
			return
		}
		if attempt == 20 {
			t.Fatal("restart kept failing")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBackpressureLongerThanWalSenderTimeoutKeepsTheStream(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE slow (id int PRIMARY KEY)`,
		`ALTER SYSTEM SET wal_sender_timeout = '1s'`, `SELECT pg_reload_conf()`)
	t.Cleanup(func() {
		conn.Exec(context.Background(), `ALTER SYSTEM RESET wal_sender_timeout`)
		conn.Exec(context.Background(), `SELECT pg_reload_conf()`)
	})
	p := params(t, "slow", pgServer(t).DSN, []string{"public.slow"}, config.SnapshotNever, connector.ModeStream)
	src := openSource(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []record.Record
	done := make(chan error, 1)
	go func() {
		done <- src.Read(ctx, nil, func(_ context.Context, recs []record.Record) error {
			mu.Lock()
			first := len(got) == 0
			got = append(got, recs...)
			mu.Unlock()
			if first {
				time.Sleep(3 * time.Second) // the pipeline is full
			}
			return nil
		})
	}()
	defer func() {
		cancel()
		<-done
		src.Close(context.Background())
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !src.status.(*testStatus).has("streaming") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	exec(t, conn, `INSERT INTO slow VALUES (1)`)
	time.Sleep(200 * time.Millisecond)
	exec(t, conn, `INSERT INTO slow VALUES (2)`)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 {
			return
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("Read ended while emit blocked: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("second record never arrived")
}

// A sync on a quiet server whose last WAL record is not a commit (here a
// non-transactional logical message, which nothing flushes) must still see the
// server reach its target, and must not ping-pong keepalives while it waits.
func TestSyncOnAQuietServerReturnsWithFewStatusUpdates(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE sq (id int PRIMARY KEY)`)
	ps := params(t, "syncquiet", pgServer(t).DSN, []string{"public.sq"}, config.SnapshotNever, connector.ModeSync)
	r := startRead(t, openSource(t, ps), nil) // creates the slot
	if err := r.result(t); err != nil {
		t.Fatal(err)
	}
	r.stop()
	exec(t, conn, `INSERT INTO sq SELECT generate_series(1, 50)`)
	for i := 0; i < 3; i++ {
		// The WAL now ends in a record that is inserted but not flushed.
		exec(t, conn, `SELECT pg_logical_emit_message(false, 'connectd_test', 'x')`)
		src := openSource(t, ps)
		r := startRead(t, src, nil)
		if err := r.result(t); err != nil {
			t.Fatal(err)
		}
		if n := len(r.snapshot()); n != 50 {
			t.Fatalf("sync %d emitted %d records, want the 50 inserts", i, n)
		}
		// A handful are expected (the first request, one per wake); a ping-pong
		// sends thousands per second.
		if n := src.statusSent.Load(); n >= 200 {
			t.Fatalf("sync %d sent %d standby status updates", i, n)
		}
		t.Logf("sync %d: %d status updates", i, src.statusSent.Load())
		r.stop()
	}
}
