package lakedb

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenFileReadsInUTCAndWritesNothing: a database file opened for a check renders
// an instant in UTC, whatever the machine's zone, and refuses writes. It comes first in
// the file: DuckDB takes the process's zone from TZ when it first opens a database.
func TestOpenFileReadsInUTCAndWritesNothing(t *testing.T) {
	t.Setenv("TZ", "America/New_York")
	path := filepath.Join(t.TempDir(), "target.duckdb")
	w, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec("SET TimeZone = 'America/New_York'; CREATE TABLE t (placed TIMESTAMPTZ); INSERT INTO t VALUES ('2026-01-01 10:00:00+00')"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, rows, err := QueryText(db, "SELECT CAST(placed AS VARCHAR) FROM t")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0][0].String != "2026-01-01 10:00:00+00" {
		t.Errorf("read %v, want the instant in UTC, 2026-01-01 10:00:00+00", rows)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (now())"); err == nil {
		t.Error("a write to the file opened for reading succeeded")
	}
}

// TestReadsHivePartitionedParquetOffline proves the bundled DuckDB has the parquet
// reader built in: nothing may be downloaded where the tests run.
func TestReadsHivePartitionedParquetOffline(t *testing.T) {
	db := DuckDB(t)
	lake := filepath.Join(t.TempDir(), "it's a lake") // a quote in the path must not break the SQL
	if err := os.MkdirAll(lake, 0o755); err != nil {
		t.Fatal(err)
	}
	var loaded bool
	if err := db.QueryRow("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'parquet'").Scan(&loaded); err != nil {
		t.Fatal(err)
	}
	if !loaded {
		t.Fatal("DuckDB's parquet extension is not built in; tests cannot read the lake")
	}
	for _, part := range []struct{ date, rows string }{
		{"2026-01-02", "range(0, 3)"},
		{"2026-01-03", "range(3, 5)"},
	} {
		dir := filepath.Join(lake, "public", "orders", "date="+part.date)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "part-0.parquet")
		q := "COPY (SELECT range AS id, 'c' AS _op FROM " + part.rows + ") TO '" + escape(file) + "' (FORMAT parquet)"
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	rows, err := db.Query("SELECT CAST(date AS VARCHAR), count(*), sum(id) FROM " + ParquetTree(lake) + " GROUP BY 1 ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type got struct {
		date     string
		n, total int64
	}
	var all []got
	for rows.Next() {
		var g got
		if err := rows.Scan(&g.date, &g.n, &g.total); err != nil {
			t.Fatal(err)
		}
		all = append(all, g)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []got{{"2026-01-02", 3, 3}, {"2026-01-03", 2, 7}}
	if len(all) != len(want) || all[0] != want[0] || all[1] != want[1] {
		t.Fatalf("got %+v, want %+v", all, want)
	}
}

func escape(s string) string { return strings.ReplaceAll(s, "'", "''") }
