// Package lakedb opens an in-memory DuckDB for tests that read the lake back. It
// lives apart from testenv because linking DuckDB adds seconds and tens of megabytes
// to every test binary, and most tests that start servers never read Parquet.
//
// DuckDB's httpfs extension cannot be downloaded where the tests run, so tests copy
// the lake to local files first (testenv.S3.Download) and read them with ParquetTree.
package lakedb

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" driver
)

// DuckDB opens an in-memory DuckDB database, closed when the test ends.
func DuckDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("lakedb: open duckdb: %v", err)
	}
	// One connection: an in-memory database is per connection in some drivers, and
	// tests want every statement to see the same tables and settings.
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("lakedb: open duckdb: %v", err)
	}
	return db
}

// OpenFile opens a DuckDB database file that connectd's duckdb destination wrote, read
// only, with its time zone set to UTC (the test servers' zone, so timestamps with a
// zone render alike on both sides). DuckDB lets one process open a file: call it only
// while no connectd has the file open, and close the database before starting one.
func OpenFile(path string) (*sql.DB, error) {
	db, err := sql.Open("duckdb", path+"?access_mode=read_only")
	if err != nil {
		return nil, fmt.Errorf("lakedb: open %s: %w", path, err)
	}
	// One connection: the session setting below holds for every query.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		db.Close()
		return nil, fmt.Errorf("lakedb: open %s: %w", path, err)
	}
	return db, nil
}

// ParquetTree returns a DuckDB table expression reading every Parquet file under dir
// as one Hive-partitioned table (date=YYYY-MM-DD folders become a column), for use
// as `SELECT ... FROM ` + ParquetTree(dir).
func ParquetTree(dir string) string {
	glob := filepath.ToSlash(filepath.Join(dir, "**", "*.parquet"))
	return "read_parquet('" + strings.ReplaceAll(glob, "'", "''") + "', hive_partitioning = true, union_by_name = true)"
}

// QueryText runs q on db (DuckDB or any other database/sql database) and returns
// its column names and every value as text; an invalid NullString is NULL. Tests
// compare text forms, which both sides of a comparison render alike.
func QueryText(db *sql.DB, q string) (cols []string, rows [][]sql.NullString, err error) {
	r, err := db.Query(q)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	if cols, err = r.Columns(); err != nil {
		return nil, nil, err
	}
	for r.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			return nil, nil, fmt.Errorf("scan: %w", err)
		}
		rows = append(rows, vals)
	}
	return cols, rows, r.Err()
}
