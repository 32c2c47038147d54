package mysqle2e

import (
	"fmt"
	"strings"
	"testing"
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
