//go:build duckdb_arrow

package duckdb

import (
	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// registerRows makes DuckDB read r as the view name, until release.
func registerRows(dc driverConn, r array.RecordReader, name string) (release func(), err error) {
	a, err := duckdb.NewArrowFromConn(dc)
	if err != nil {
		return nil, err
	}
	return a.RegisterView(r, name)
}
