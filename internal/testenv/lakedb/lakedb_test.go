package lakedb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
