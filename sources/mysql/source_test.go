package mysql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

const typesTable = `CREATE TABLE typesdb.t (
 id int PRIMARY KEY,
 c_tiny tinyint, c_utiny tinyint unsigned, c_bool tinyint(1), c_small smallint, c_usmall smallint unsigned,
 c_med mediumint, c_umed mediumint unsigned, c_int int, c_uint int unsigned, c_big bigint, c_ubig bigint unsigned,
 c_dec decimal(65,30), c_dec2 decimal(10,2), c_float float, c_double double, c_bit bit(10),
 c_char char(5), c_varchar varchar(20), c_text text, c_latin varchar(10) CHARACTER SET latin1,
 c_binary binary(4), c_varbinary varbinary(8), c_blob blob,
 c_date date, c_dt datetime, c_dt6 datetime(6), c_ts timestamp(3) NULL, c_time time, c_time6 time(6), c_year year,
 c_enum enum('a','b c'), c_set set('x','y','z'), c_json json, c_zero_date date, c_zero_dt datetime, c_null int)`

const typesValues = `-128, 255, 1, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
 '-12345678901234567890123456789012345.123456789012345678901234567890', 12345678.90, 1.25, 3.141592653589793, b'1010000001',
 'ab', 'héllo wörld', 'long text ✓', 'café', x'0102', x'00ff', x'deadbeef',
 '2024-02-29', '2024-01-02 03:04:05', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123', '-838:59:59', '12:34:56.789012', 2024,
 'b c', 'x,z', '{"a": [1, 2]}', '0000-00-00', '0000-00-00 00:00:00', NULL`

func expectedTypes() map[string]any {
	ts := func(s string) record.Timestamp {
		tm, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if err != nil {
			panic(err)
		}
		return record.TimestampOf(tm)
	}
	return map[string]any{
		"c_tiny": int16(-128), "c_utiny": int16(255), "c_bool": int16(1), "c_small": int16(-32768), "c_usmall": int32(65535),
		"c_med": int32(-8388608), "c_umed": int32(16777215), "c_int": int32(math.MinInt32), "c_uint": int64(4294967295),
		"c_big": int64(math.MinInt64), "c_ubig": uint64(math.MaxUint64),
		"c_dec":    record.Decimal("-12345678901234567890123456789012345.123456789012345678901234567890"),
		"c_dec2":   record.Decimal("12345678.90"),
		"c_float":  float32(1.25),
		"c_double": 3.141592653589793,
		"c_bit":    "1010000001",
		"c_char":   "ab", "c_varchar": "héllo wörld", "c_text": "long text ✓", "c_latin": "café",
		"c_binary": []byte{1, 2, 0, 0}, "c_varbinary": []byte{0, 0xff}, "c_blob": []byte{0xde, 0xad, 0xbe, 0xef},
		"c_date":  record.DateOf(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)),
		"c_dt":    ts("2024-01-02 03:04:05"),
		"c_dt6":   ts("2024-01-02 03:04:05.123456"),
		"c_ts":    ts("2024-01-02 03:04:05.123"),
		"c_time":  "-838:59:59",
		"c_time6": "12:34:56.789012",
		"c_year":  int16(2024),
		"c_enum":  "b c", "c_set": "x,z",
		"c_json":      record.JSON(`{"a": [1, 2]}`),
		"c_zero_date": nil, "c_zero_dt": nil, "c_null": nil,
	}
}

func equalAny(a, b any) bool {
	if x, ok := a.([]byte); ok {
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	}
	if x, ok := a.(record.JSON); ok {
		y, ok := b.(record.JSON)
		return ok && bytes.Equal(x, y)
	}
	return a == b
}

func checkTypes(t *testing.T, what string, r record.Record, id int32) {
	t.Helper()
	got := vals(r)
	want := expectedTypes()
	want["id"] = id
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: column %s missing", what, name)
			continue
		}
		if !equalAny(g, w) {
			t.Errorf("%s: %s = %#v (%T), want %#v (%T)", what, name, g, g, w, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d columns, want %d", what, len(got), len(want))
	}
}

func TestEveryTypeMapsTheSameInSnapshotAndStream(t *testing.T) {
	exec(t, "CREATE DATABASE typesdb; "+typesTable)
	exec(t, "SET sql_mode=''; INSERT INTO typesdb.t VALUES (1, "+typesValues+")")
	h := newHarness(t, "types", "typesdb.t")
	recs := h.sync()
	if ops(recs) != "r" {
		t.Fatalf("snapshot ops %q", ops(recs))
	}
	checkTypes(t, "snapshot", recs[0], 1)
	exec(t, "SET sql_mode=''; BEGIN; INSERT INTO typesdb.t VALUES (2, "+typesValues+"); UPDATE typesdb.t SET c_int = 7 WHERE id = 2; COMMIT; DELETE FROM typesdb.t WHERE id = 1")
	recs = h.sync()
	if ops(recs) != "cud" {
		t.Fatalf("stream ops %q", ops(recs))
	}
	checkTypes(t, "stream insert", recs[0], 2)
	checkTypes(t, "stream delete", recs[2], 1)
	if recs[1].Before[recs[1].Schema.Index("c_int")] != int32(math.MinInt32) || recs[1].After[recs[1].Schema.Index("c_int")] != int32(7) {
		t.Errorf("update images: %v -> %v", recs[1].Before, recs[1].After)
	}
	if recs[0].TxID == "" || recs[0].TxID != recs[1].TxID || !strings.HasPrefix(recs[0].TxID, "0-1-") {
		t.Errorf("txids %q %q", recs[0].TxID, recs[1].TxID)
	}
	if time.Since(recs[0].CommitTS) > time.Hour || recs[0].CommitTS.Location() != time.UTC {
		t.Errorf("commit ts %v", recs[0].CommitTS)
	}
	sch := recs[0].Schema
	for name, kind := range map[string]record.Kind{"c_ubig": record.KindUint64, "c_dec": record.KindDecimalText, "c_dec2": record.KindDecimal,
		"c_ts": record.KindTimestampTZ, "c_dt": record.KindTimestamp, "c_time": record.KindString, "c_json": record.KindJSON,
		"c_bit": record.KindString, "c_enum": record.KindString, "c_bool": record.KindInt16, "c_blob": record.KindBytes} {
		if k := sch.Columns[sch.Index(name)].Type.Kind; k != kind {
			t.Errorf("%s: kind %s, want %s", name, k, kind)
		}
	}
	checkUniquePositions(t, h.got)
}

func TestKeyChangingUpdateIsDeleteThenCreate(t *testing.T) {
	exec(t, "CREATE DATABASE keydb; CREATE TABLE keydb.t (id int PRIMARY KEY, v text); INSERT INTO keydb.t VALUES (1, 'a')")
	h := newHarness(t, "keys", "keydb.*")
	h.sync()
	exec(t, "UPDATE keydb.t SET id = 2 WHERE id = 1")
	recs := h.sync()
	if ops(recs) != "dc" || vals(recs[0])["id"] != int32(1) || vals(recs[1])["id"] != int32(2) {
		t.Fatalf("got %q %v", ops(recs), recs)
	}
}

// TestOnlySelectedTablesAreDecoded: rows of tables outside the patterns share the
// binlog and its transactions with selected ones; they are skipped without being
// decoded, and the selected rows around them all arrive.
func TestOnlySelectedTablesAreDecoded(t *testing.T) {
	exec(t, `CREATE DATABASE seldb; CREATE TABLE seldb.keep (id int PRIMARY KEY, d decimal(10,2), at datetime(6));
CREATE TABLE seldb.other (id int PRIMARY KEY, d decimal(10,2), at datetime(6))`)
	h := newHarness(t, "selected", "seldb.keep")
	h.sync()
	exec(t, `BEGIN; INSERT INTO seldb.other VALUES (1, 1.5, '2024-01-01 00:00:00');
INSERT INTO seldb.keep VALUES (1, -2.25, '1969-07-20 20:17:40.5'), (2, 0.05, '2024-02-29 12:00:00.000001');
UPDATE seldb.other SET d = 3 WHERE id = 1; INSERT INTO seldb.keep VALUES (3, 7, '2024-03-01 00:00:00');
DELETE FROM seldb.other; COMMIT`)
	recs := h.sync()
	if ops(recs) != "ccc" {
		t.Fatalf("got %q: %v", ops(recs), recs)
	}
	want := []struct {
		d  record.Decimal
		at string
	}{{"-2.25", "1969-07-20 20:17:40.5"}, {"0.05", "2024-02-29 12:00:00.000001"}, {"7.00", "2024-03-01 00:00:00"}}
	for i, r := range recs {
		if r.Schema.Table != "keep" {
			t.Errorf("record %d is of %s", i, r.Schema.QualifiedName())
		}
		at, _ := time.Parse("2006-01-02 15:04:05.999999", want[i].at)
		if v := vals(r); v["d"] != want[i].d || v["at"] != record.TimestampOf(at) {
			t.Errorf("record %d = %v, want d %s at %s", i, v, want[i].d, want[i].at)
		}
	}
	checkUniquePositions(t, recs)
}

func TestSnapshotOfTableBeingWrittenLosesAndDoublesNothing(t *testing.T) {
	exec(t, "CREATE DATABASE busydb; CREATE TABLE busydb.t (id int PRIMARY KEY, n int)")
	var b strings.Builder
	b.WriteString("INSERT INTO busydb.t VALUES ")
	for i := 1; i <= 3000; i++ {
		if i > 1 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "(%d, 0)", i)
	}
	exec(t, b.String())
	ctx, cancel := context.WithCancel(testCtx(t))
	writerDone := make(chan int)
	maria := mariaServer(t)
	go func() {
		id := 3000
		for ctx.Err() == nil && id < 3400 {
			id++
			if err := maria.Exec(context.Background(), fmt.Sprintf("INSERT INTO busydb.t VALUES (%d, 0); UPDATE busydb.t SET n = n + 1 WHERE id = %d", id, id-3000)); err != nil {
				break
			}
		}
		writerDone <- id
	}()
	h := newHarness(t, "busy", "busydb.t")
	h.slow = 100 * time.Millisecond // keep the snapshot open while the writer runs
	first := h.sync()               // snapshot plus the stream up to where the binlog ended when Read began
	cancel()
	last := <-writerDone
	t.Logf("writer inserted rows 3001..%d", last)
	h.slow = 0
	h.sync()
	if len(first) == 0 {
		t.Fatal("nothing read")
	}
	checkUniquePositions(t, h.got)
	seen := map[int32]int{}
	state := map[int32]int32{}
	for _, r := range h.got {
		v := vals(r)
		id := v["id"].(int32)
		switch r.Op {
		case record.OpRead, record.OpCreate:
			seen[id]++
			state[id] = v["n"].(int32)
		case record.OpUpdate:
			state[id] = v["n"].(int32)
		}
	}
	for id := int32(1); id <= int32(last); id++ {
		if seen[id] != 1 {
			t.Errorf("row %d read or inserted %d times", id, seen[id])
		}
	}
	out, err := mariaServer(t).Query(testCtx(t), "SELECT id, n FROM busydb.t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var id, n int32
		fmt.Sscan(line, &id, &n)
		if state[id] != n {
			t.Errorf("row %d: replayed n = %d, table has %d", id, state[id], n)
		}
	}
}

func TestDDLMidStreamChangesTheSchema(t *testing.T) {
	exec(t, "CREATE DATABASE ddldb; CREATE TABLE ddldb.t (id int PRIMARY KEY, a int); INSERT INTO ddldb.t VALUES (0, 0)")
	h := newHarness(t, "ddl", "ddldb.*")
	h.sync()
	exec(t, `INSERT INTO ddldb.t VALUES (1, 10);
ALTER TABLE ddldb.t ADD COLUMN b varchar(5) AFTER id;
INSERT INTO ddldb.t VALUES (2, '7', 20);
ALTER TABLE ddldb.t DROP COLUMN a, MODIFY b bigint unsigned;
INSERT INTO ddldb.t VALUES (3, 18446744073709551615);
ALTER TABLE ddldb.t RENAME COLUMN b TO bb;
INSERT INTO ddldb.t VALUES (4, 4);
CREATE TABLE ddldb.u (k varchar(3) PRIMARY KEY);
INSERT INTO ddldb.u VALUES ('k');
RENAME TABLE ddldb.u TO ddldb.u2;
INSERT INTO ddldb.u2 VALUES ('k2');
TRUNCATE ddldb.t;
INSERT INTO ddldb.t VALUES (5, 5)`)
	recs := h.sync()
	if ops(recs) != "cccccctc" {
		t.Fatalf("ops %q", ops(recs))
	}
	cols := func(r record.Record) string {
		var n []string
		for _, c := range r.Schema.Columns {
			n = append(n, c.Name)
		}
		return r.Schema.Table + ":" + strings.Join(n, ",")
	}
	want := []string{"t:id,a", "t:id,b,a", "t:id,b", "t:id,bb", "u:k", "u2:k", "t:id,bb", "t:id,bb"}
	for i, r := range recs {
		if got := cols(r); got != want[i] {
			t.Errorf("record %d: %s, want %s", i, got, want[i])
		}
	}
	if v := vals(recs[2])["b"]; v != uint64(math.MaxUint64) {
		t.Errorf("modified column value %#v", v)
	}
	if recs[1].Schema.Version != 2 || recs[3].Schema.Version != 4 {
		t.Errorf("versions %d %d", recs[1].Schema.Version, recs[3].Schema.Version)
	}
	for _, v := range recs[6].After {
		if v != nil {
			t.Errorf("truncate record has values: %v", recs[6].After)
		}
	}
	// The schema history survives: a new source resuming mid-way sees the schema as
	// of its position, not as of now.
	h2 := newHarness(t, "ddl", "ddldb.*")
	h2.state = h.state
	h2.committed = recs[1].Pos
	again := h2.sync()
	if len(again) != len(recs)-2 {
		t.Fatalf("resume from record 1: %d records, want %d", len(again), len(recs)-2)
	}
	for i, r := range again {
		if cols(r) != want[i+2] || !bytes.Equal(r.Pos, recs[i+2].Pos) {
			t.Errorf("resumed record %d: %s at %s, want %s at %s", i, cols(r), describePos(r.Pos), want[i+2], describePos(recs[i+2].Pos))
		}
	}

	// A DDL the parser cannot follow stops the connector, naming the statement.
	exec(t, "ALTER TABLE ddldb.t ADD SYSTEM VERSIONING")
	_, err := h.run(connector.ModeSync, -1)
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "ADD SYSTEM VERSIONING") {
		t.Fatalf("unfollowable DDL: %v", err)
	}
}

func TestRestartAfterFlushLogsAndServerRestartResumesExactly(t *testing.T) {
	exec(t, "CREATE DATABASE restartdb; CREATE TABLE restartdb.t (id int PRIMARY KEY, v varchar(10)); INSERT INTO restartdb.t VALUES (0, 'seed')")
	h := newHarness(t, "restart", "restartdb.t")
	if recs := h.sync(); ops(recs) != "r" {
		t.Fatalf("snapshot: %q", ops(recs))
	}
	h.got = nil
	insert := func(from, to int) {
		var b strings.Builder
		b.WriteString("INSERT INTO restartdb.t VALUES ")
		for i := from; i <= to; i++ {
			if i > from {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "(%d, 'v%d')", i, i)
		}
		exec(t, b.String())
	}
	insert(1, 50)
	exec(t, "FLUSH LOGS")
	insert(51, 100)
	// Crash in the middle of the first transaction, then in the middle of the one
	// after the rotation.
	if _, err := h.run(connector.ModeSync, 20); !errors.Is(err, errCrash) {
		t.Fatalf("first run: %v", err)
	}
	if _, err := h.run(connector.ModeSync, 50); !errors.Is(err, errCrash) {
		t.Fatalf("second run: %v", err)
	}
	h.sync()
	ctx := testCtx(t)
	if err := mariaServer(t).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	insert(101, 150)
	if _, err := h.run(connector.ModeSync, 10); !errors.Is(err, errCrash) {
		t.Fatalf("after restart: %v", err)
	}
	if err := mariaServer(t).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	h.sync()
	checkUniquePositions(t, h.got)
	seen := map[int32]int{}
	for _, r := range h.got {
		if r.Op != record.OpCreate {
			t.Errorf("unexpected op %s", r.Op)
		}
		seen[vals(r)["id"].(int32)]++
	}
	for id := int32(1); id <= 150; id++ {
		if seen[id] != 1 {
			t.Errorf("row %d delivered %d times", id, seen[id])
		}
	}
}

func TestCheckFailsOnStatementFormatWithTheFix(t *testing.T) {
	exec(t, "CREATE DATABASE checkdb; CREATE TABLE checkdb.t (id int PRIMARY KEY)")
	h := newHarness(t, "check", "checkdb.*")
	res := Kind{}.Check(testCtx(t), h.params(connector.ModeStream))
	for _, r := range res {
		if !r.OK {
			t.Errorf("healthy server: %s failed: %s (%s)", r.Name, r.Detail, r.Fix)
		}
	}
	exec(t, "SET GLOBAL binlog_format = 'STATEMENT'")
	defer exec(t, "SET GLOBAL binlog_format = 'ROW'")
	res = Kind{}.Check(testCtx(t), h.params(connector.ModeStream))
	found := false
	for _, r := range res {
		if r.Name == "mysql: binlog_format" {
			found = true
			if r.OK || !strings.Contains(r.Fix, "SET GLOBAL binlog_format = 'ROW'") || !strings.Contains(r.Detail, "STATEMENT") {
				t.Errorf("binlog_format check: %+v", r)
			}
		}
	}
	if !found {
		t.Error("no binlog_format check")
	}
	_, err := h.run(connector.ModeSync, -1)
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "binlog_format") {
		t.Errorf("Read on a STATEMENT server: %v", err)
	}
}

func TestDiscoverListsSelectedTables(t *testing.T) {
	exec(t, "CREATE DATABASE discdb; CREATE TABLE discdb.a (id bigint unsigned PRIMARY KEY, d decimal(12,3)); CREATE TABLE discdb.b (x int)")
	h := newHarness(t, "disc", "discdb.a")
	schemas, err := Kind{}.Discover(testCtx(t), h.params(connector.ModeStream))
	if err != nil {
		t.Fatal(err)
	}
	if len(schemas) != 1 || schemas[0].Table != "a" || schemas[0].Columns[0].Type.Kind != record.KindUint64 ||
		!schemas[0].Columns[0].Key || schemas[0].Columns[1].Type.String() != "decimal(12,3)" {
		t.Fatalf("discover: %+v", schemas)
	}
}

func TestInitialOnlyStopsAfterSnapshot(t *testing.T) {
	exec(t, "CREATE DATABASE onlydb; CREATE TABLE onlydb.t (id int PRIMARY KEY); INSERT INTO onlydb.t VALUES (1), (2)")
	h := newHarness(t, "only", "onlydb.t")
	h.snapshot = config.SnapshotInitialOnly
	recs, err := h.run(connector.ModeStream, -1)
	if err != nil || ops(recs) != "rr" {
		t.Fatalf("initial_only: %q %v", ops(recs), err)
	}
	if d, _ := parsePos(recs[1].Pos); !d.done {
		t.Error("last snapshot record is not the completion marker")
	}
}
