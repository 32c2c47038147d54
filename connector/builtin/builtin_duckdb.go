//go:build duckdb

package builtin

import (
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/duckdb"
)

// addDuckDB registers the duckdb destination, which links DuckDB through cgo
// (make build-duckdb).
func addDuckDB(r *connector.Registry) {
	r.AddDestination("duckdb", duckdb.Kind{})
}
