//go:build !duckdb_arrow

package duckdb

import (
	"errors"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectd/connectd/connector"
)

// registerRows refuses: the driver's Arrow interface, through which Load hands DuckDB
// its rows, is compiled only with the duckdb_arrow build tag.
func registerRows(driverConn, array.RecordReader, string) (func(), error) {
	return nil, connector.Permanent(errors.New("this connectd was built without the duckdb_arrow build tag, which the duckdb destination loads through: " +
		"build it with `make build-duckdb` (go build -tags duckdb,duckdb_arrow), and run its tests with -tags duckdb_arrow"))
}
