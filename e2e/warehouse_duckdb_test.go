package e2e

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// The duckdb destination end to end: the binary built with it (-tags duckdb) loads
// the warehouse workload into an on-disk DuckDB file, which the test reads with
// DuckDB's own driver once connectd has stopped (DuckDB lets one process open a file).

// duckTarget is a DuckDB file connectd loaded, open for reading.
type duckTarget struct{ db *sql.DB }

func (d duckTarget) rows(q string) ([][]string, error) {
	_, rows, err := lakedb.QueryText(d.db, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	out := make([][]string, len(rows))
	for i, row := range rows {
		out[i] = make([]string, len(row))
		for j, v := range row {
			out[i][j] = v.String
			if !v.Valid {
				out[i][j] = nullText
			}
		}
	}
	return out, nil
}

// duckArrayText renders a DuckDB list as PostgreSQL writes an array: {a,NULL,"b c"},
// where DuckDB writes [a, NULL, b c]. An element is quoted as PostgreSQL's array_out
// quotes it: when it is empty, is the word NULL, or holds a brace, a comma, a quote, a
// backslash or white space; a quote or a backslash in it is escaped with a backslash.
// The workload's arrays are of text and integers, whose elements DuckDB renders as
// PostgreSQL does.
const duckArrayText = `'{' || array_to_string(list_transform(X, lambda e: CASE
	WHEN e IS NULL THEN 'NULL'
	WHEN e::VARCHAR = '' OR lower(e::VARCHAR) = 'null' OR regexp_matches(e::VARCHAR, '[{},"\\\s]')
		THEN '"' || replace(replace(e::VARCHAR, '\', '\\'), '"', '\"') || '"'
	ELSE e::VARCHAR END), ',') || '}'`

// duckDoubleText renders a DOUBLE as PostgreSQL writes a double precision: DuckDB
// writes 2.0, inf, -inf and nan where PostgreSQL writes 2, Infinity, -Infinity and NaN.
// (Both write the shortest digits that read back exactly; they also differ in where
// they switch to an exponent, which the workload's values never need.)
const duckDoubleText = `CASE WHEN isnan(X) THEN 'NaN' WHEN X = 'inf'::DOUBLE THEN 'Infinity' WHEN X = '-inf'::DOUBLE THEN '-Infinity'
	ELSE regexp_replace(X::VARCHAR, '\.0$', '') END`

// text renders a DuckDB column as the source renders its value. Integers, booleans,
// DECIMAL (its scale's digits kept), DATE, UUID and text render alike; TIMESTAMPTZ
// does too in UTC (lakedb.OpenFile sets it, the source sessions run in it); JSON holds
// the text the source sent, jsonb's canonical form.
func (duckTarget) text(x, def string) string {
	switch {
	case strings.HasSuffix(def, "[]"):
		return strings.ReplaceAll(duckArrayText, "X", x)
	case def == "double precision":
		return strings.ReplaceAll(duckDoubleText, "X", "("+x+")")
	}
	return "(" + x + ")::VARCHAR"
}

// srcText renders a source column: a numeric(p,s) NaN as NULL, which is what the
// destination loads for it, as DECIMAL holds no NaN (destinations/duckdb/README.md).
func (duckTarget) srcText(x, def string) string {
	if strings.HasPrefix(def, "numeric(") {
		return "NULLIF(" + x + ", 'NaN')::text"
	}
	return "(" + x + ")::text"
}

// TestWarehouseDuckDBReplicatesRandomWorkload is TestWarehouseReplicatesRandomWorkload
// into one DuckDB file, a schema per connector: after the snapshot, the random workload
// (key changes of rows whose TOAST values are left unsent among it) by sync and by run,
// and a column added on the source, the merged tables equal the source row for row,
// the soft-deleted rows are the deleted ones, and append holds every change once.
func TestWarehouseDuckDBReplicatesRandomWorkload(t *testing.T) {
	srcDSN, src := newDatabase(t, "e2e_whduck")
	w := startWhWorkload(t, src)
	s := newWhSetup(t, srcDSN, "", "shop.*")
	s.duck = filepath.Join(t.TempDir(), "warehouse.duckdb")
	s.replicate(t, src, w)
}
