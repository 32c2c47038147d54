package mysqle2e

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"
)

// mariaValueCols is how the value table reads on each side: MariaDB text with the
// documented mapping applied (a zero month or day is null), DuckDB text of the lake.
var (
	mariaValueCols = []string{
		"CAST(u AS CHAR) AS u",
		"IF(MONTH(d) = 0 OR DAYOFMONTH(d) = 0, NULL, CAST(d AS CHAR)) AS d",
		"IF(MONTH(dt) = 0 OR DAYOFMONTH(dt) = 0, NULL, CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', dt) AS CHAR)) AS dt",
		"CAST(ip AS CHAR) AS ip", "CAST(tb AS CHAR) AS tb", "note",
	}
	duckValueCols = []string{
		"CAST(u AS VARCHAR) AS u", "CAST(d AS VARCHAR) AS d", "CAST(epoch_us(dt) AS VARCHAR) AS dt",
		"ip", "CAST(tb AS VARCHAR) AS tb", "note",
	}
)

// TestMariaDBValuesReadTheSameInSnapshotAndStream: zero-in-date DATEs and
// DATETIMEs, UUID, INET6 and TINYINT(1) values written before the snapshot and
// while streaming, in a table keyed by UUID whose rows are updated and deleted by
// that key, rebuild from the lake (latest _pos per key, through DuckDB) into what
// MariaDB holds: zero months and days null on both paths (never rolled over into
// the month before), addresses and UUIDs as the server prints them, TINYINT(1) as
// integers.
func TestMariaDBValuesReadTheSameInSnapshotAndStream(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE myvals")
	mustExec(t, db, "CREATE TABLE myvals.t (u uuid PRIMARY KEY, d date, dt datetime(3), ip inet6, tb tinyint(1), note varchar(20))")
	values := func(base int) string {
		rows := []string{
			"('%s1', '2024-00-15', '2024-00-15 10:11:12.5', '::ffff:192.0.2.1', 5, 'zero month')",
			"('%s2', '2024-05-00', '2024-05-00 23:59:59.999', '2001:db8::1', -1, 'zero day')",
			"('%s3', '0000-00-00', '0000-00-00 00:00:00', '::', 127, 'zero date')",
			"('%s4', '2024-02-29', '1969-07-20 20:17:40.25', 'fe80::1:2:3:4', -128, 'plain')",
			"('%s5', '2024-12-31', '2024-12-31 00:00:00', '::1', 0, 'plain')",
			"('%s6', NULL, NULL, NULL, NULL, 'nulls')",
		}
		prefix := fmt.Sprintf("6ccd780c-baba-1026-9564-5b8c656024%d", base) // a version-1 UUID, stored reversed
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprintf(r, prefix))
		}
		v4 := fmt.Sprintf("('123e4567-e89b-42d3-a456-42661417400%d', '2023-01-01', '2023-01-01 01:01:01', '2001:db8:0:1:1:1:1:1', 1, 'v4')", base)
		v7 := fmt.Sprintf("('0190c3a4-7e3f-7b2a-9f00-11223344556%d', '2023-00-00', '2023-00-00 00:00:00', '1::', 2, 'v7')", base)
		return strings.Join(append(out, v4, v7), ", ")
	}
	mustExec(t, db, "SET SESSION sql_mode = ''; INSERT INTO myvals.t VALUES "+values(1))
	p := newPipe(t, "myddl_values", "myvals", false)
	p.sync(t)

	mustExec(t, db, "SET SESSION sql_mode = ''; INSERT INTO myvals.t VALUES "+values(2))
	// Updates and deletes by UUID, of snapshot rows and of streamed rows.
	mustExec(t, db, `SET SESSION sql_mode = '';
UPDATE myvals.t SET note = 'updated', tb = tb - 1 WHERE u = '6ccd780c-baba-1026-9564-5b8c65602411';
UPDATE myvals.t SET note = 'updated' WHERE u = '6ccd780c-baba-1026-9564-5b8c65602423';
DELETE FROM myvals.t WHERE u IN ('6ccd780c-baba-1026-9564-5b8c65602412', '0190c3a4-7e3f-7b2a-9f00-112233445562',
  '6ccd780c-baba-1026-9564-5b8c65602425', '123e4567-e89b-42d3-a456-426614174001')`)
	p.sync(t)

	lake := lakeRows(t, p.localLake(t), "myvals", "t", duckValueCols...)
	checkPositions(t, lake)
	ops := map[string]int{}
	for _, r := range lake {
		ops[r["_op"]]++
	}
	if ops["r"] != 8 || ops["c"] != 8 || ops["u"] != 2 || ops["d"] != 4 {
		t.Errorf("lake ops %v, want 8 r, 8 c, 2 u, 4 d", ops)
	}
	cols := []string{"d", "dt", "ip", "tb", "note"}
	got := rebuild(lake, "u", cols...)
	want := sourceRows(t, db, "SELECT "+strings.Join(mariaValueCols, ", ")+" FROM myvals.t", "u", cols...)
	compareLines(t, "myvals.t", got, want)
	if len(want) != 12 {
		t.Errorf("MariaDB holds %d rows, want 12", len(want))
	}
	types := query(t, lakeDuck(t), "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "+treeOf(p.localLake(t), "myvals", "t")+")")
	wantTypes := map[string]string{"u": "UUID", "tb": "SMALLINT", "ip": "VARCHAR", "d": "DATE", "dt": "TIMESTAMP"}
	for _, r := range types {
		if w, ok := wantTypes[r["column_name"]]; ok && r["column_type"] != w {
			t.Errorf("column %s: Parquet read as %s, want %s", r["column_name"], r["column_type"], w)
		}
	}
}

// reconcile compares one table of the lake (latest _pos per key, deletes applied)
// with MariaDB, and checks that no _pos repeats.
func reconcile(t *testing.T, p *pipe, db *sql.DB, ns, table string, cols ...string) {
	t.Helper()
	duck := []string{"CAST(id AS VARCHAR) AS id"}
	maria := []string{"CAST(id AS CHAR) AS id"}
	for _, c := range cols {
		duck = append(duck, "CAST("+c+" AS VARCHAR) AS "+c)
		maria = append(maria, "CAST(`"+c+"` AS CHAR) AS "+c)
	}
	lake := lakeRows(t, p.localLake(t), ns, table, duck...)
	checkPositions(t, lake)
	want := sourceRows(t, db, "SELECT "+strings.Join(maria, ", ")+" FROM "+ns+"."+table, "id", cols...)
	if len(want) == 0 {
		t.Fatalf("%s.%s: no rows in MariaDB to compare", ns, table)
	}
	compareLines(t, ns+"."+table, rebuild(lake, "id", cols...), want)
}

// TestUnselectedVersionedTablesAndSequencesNeverStopTheStream: system-versioned
// tables (which the parser cannot follow: their row images carry hidden columns)
// and sequences, existing at the snapshot and created, altered and used while
// streaming, do not stop the connector when they are not selected, nor when a
// pattern selects a sequence; MariaDB syntax on the selected table (ADD COLUMN IF
// NOT EXISTS, INVISIBLE, UUID and INET6 columns, CREATE OR REPLACE) is followed,
// and the selected table reconciles.
func TestUnselectedVersionedTablesAndSequencesNeverStopTheStream(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, `CREATE DATABASE myddl_a;
CREATE TABLE myddl_a.orders (id int PRIMARY KEY, v varchar(20));
CREATE TABLE myddl_a.hist_old (id int PRIMARY KEY, v int) WITH SYSTEM VERSIONING;
CREATE SEQUENCE myddl_a.seq_old;
INSERT INTO myddl_a.orders VALUES (1, 'a'), (2, 'b'), (3, 'c');
INSERT INTO myddl_a.hist_old VALUES (1, 1); UPDATE myddl_a.hist_old SET v = 2;
SELECT NEXTVAL(myddl_a.seq_old)`)
	p := newPipe(t, "myddl_unselected", "myddl_a", false)
	p.tables = []string{"myddl_a.orders", "myddl_a.seq_*"}
	p.write(t)
	p.sync(t)

	mustExec(t, db, `CREATE TABLE myddl_a.hist_new (id int PRIMARY KEY, v int, ip inet6) WITH SYSTEM VERSIONING;
INSERT INTO myddl_a.orders VALUES (4, 'd');
INSERT INTO myddl_a.hist_new VALUES (1, 1, '::1'); UPDATE myddl_a.hist_new SET v = 5; DELETE FROM myddl_a.hist_new;
SET SESSION system_versioning_alter_history = KEEP;
ALTER TABLE myddl_a.hist_old ADD COLUMN x int;
ALTER TABLE myddl_a.hist_old DROP SYSTEM VERSIONING;
CREATE OR REPLACE TABLE myddl_a.hist_x (id int) WITH SYSTEM VERSIONING;
CREATE SEQUENCE myddl_a.seq_new START WITH 10 INCREMENT BY 5;
SELECT NEXTVAL(myddl_a.seq_new), NEXTVAL(myddl_a.seq_old);
ALTER SEQUENCE myddl_a.seq_new RESTART WITH 100;
SELECT NEXTVAL(myddl_a.seq_new); SELECT SETVAL(myddl_a.seq_old, 1000);
UPDATE myddl_a.orders SET v = 'b2' WHERE id = 2;
ALTER TABLE myddl_a.orders ADD COLUMN IF NOT EXISTS note varchar(10) INVISIBLE, ADD COLUMN IF NOT EXISTS u uuid, ADD COLUMN IF NOT EXISTS ip inet6;
ALTER TABLE myddl_a.orders ADD COLUMN IF NOT EXISTS note varchar(10) INVISIBLE;
INSERT INTO myddl_a.orders (id, v, note, u, ip) VALUES (5, 'e', 'hidden', '123e4567-e89b-42d3-a456-426614174000', '2001:db8::7');
DELETE FROM myddl_a.orders WHERE id = 1;
DROP SEQUENCE myddl_a.seq_new; DROP TABLE myddl_a.hist_x`)
	r := p.sync(t)
	if !strings.Contains(r.stderr, "could not be followed") {
		t.Logf("stderr: %s", tail(r.stderr, 20))
	}
	mustExec(t, db, "INSERT INTO myddl_a.orders (id, v, note) VALUES (6, 'f', 'later'); SELECT NEXTVAL(myddl_a.seq_old)")
	p.sync(t)
	reconcile(t, p, db, "myddl_a", "orders", "v", "note", "u", "ip")
}

// TestTablesCreatedWhileStreamingTakeTheirDatabaseCharset: a table created in a
// latin1 database without a character set of its own has latin1 text, and one
// created after ALTER DATABASE ... utf8mb4 has utf8mb4 text; both stream their
// rows decoded right (the binlog carries the bytes of the column's set).
func TestTablesCreatedWhileStreamingTakeTheirDatabaseCharset(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, `CREATE DATABASE myddl_l CHARACTER SET latin1;
CREATE TABLE myddl_l.t0 (id int PRIMARY KEY, s varchar(20)); INSERT INTO myddl_l.t0 VALUES (1, 'café')`)
	p := newPipe(t, "myddl_latin1", "myddl_l", false)
	p.sync(t)
	mustExec(t, db, `CREATE TABLE myddl_l.t1 (id int PRIMARY KEY, s varchar(20), x text);
INSERT INTO myddl_l.t1 VALUES (1, 'naïve €', 'Æsir ÿ'), (2, 'plain', NULL); UPDATE myddl_l.t1 SET x = 'über' WHERE id = 2;
INSERT INTO myddl_l.t0 VALUES (2, 'crème brûlée');
ALTER DATABASE myddl_l CHARACTER SET utf8mb4;
CREATE TABLE myddl_l.t2 (id int PRIMARY KEY, s varchar(20));
INSERT INTO myddl_l.t2 VALUES (1, 'emoji 😀 ✓')`)
	p.sync(t)
	for table, cols := range map[string][]string{"t0": {"s"}, "t1": {"s", "x"}, "t2": {"s"}} {
		reconcile(t, p, db, "myddl_l", table, cols...)
	}
	var cs string
	if err := db.QueryRow("SELECT CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'myddl_l' AND TABLE_NAME = 't1' AND COLUMN_NAME = 's'").Scan(&cs); err != nil || cs != "latin1" {
		t.Fatalf("t1.s is %q (%v), want latin1: the test does not test what it says", cs, err)
	}
}

// TestUnparseableDDLOnASelectedTableFallsBackToShowCreateTable: a DDL the parser
// cannot follow on a selected table (CONVERT TO CHARACTER SET DEFAULT) takes the
// table's definition from SHOW CREATE TABLE, with a warning, and the rows after it
// reconcile; when the table changed again before the binlog end read with that
// definition, the connector stops with an error that says so and what to do.
func TestUnparseableDDLOnASelectedTableFallsBackToShowCreateTable(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, `CREATE DATABASE myddl_f CHARACTER SET latin1;
CREATE TABLE myddl_f.t (id int PRIMARY KEY, s varchar(20) CHARACTER SET utf8mb4); INSERT INTO myddl_f.t VALUES (1, 'ünïcode')`)
	p := newPipe(t, "myddl_fallback", "myddl_f", false)
	p.sync(t)
	mustExec(t, db, `ALTER TABLE myddl_f.t CONVERT TO CHARACTER SET DEFAULT;
INSERT INTO myddl_f.t VALUES (2, 'crème € Æ'); UPDATE myddl_f.t SET s = 'é' WHERE id = 1`)
	r := p.sync(t)
	if !strings.Contains(r.stderr, "taken from SHOW CREATE TABLE") {
		t.Errorf("no warning about the fallback:\n%s", tail(r.stderr, 20))
	}
	reconcile(t, p, db, "myddl_f", "t", "s")

	// The table changes again before connectd reads the first DDL: SHOW CREATE TABLE
	// already has the second change, so it cannot stand for the table between the two.
	// (Rows between them would stop it too, on the row images' column count.)
	mustExec(t, db, `ALTER TABLE myddl_f.t CONVERT TO CHARACTER SET DEFAULT, ADD COLUMN a int;
ALTER TABLE myddl_f.t ADD COLUMN b int; INSERT INTO myddl_f.t VALUES (3, 'y', 2, 3)`)
	r = connectd(t, 90*time.Second, "sync", "-c", p.config)
	if r.code == 0 || !strings.Contains(r.stderr, "changed again before") || !strings.Contains(r.stderr, "offsets reset") {
		t.Fatalf("want a failed sync saying the table changed again and to reset; got %s", r)
	}
}
