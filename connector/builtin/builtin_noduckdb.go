//go:build !duckdb

package builtin

import (
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/duckdb/duckdbconfig"
)

// addDuckDB registers a stand-in for the duckdb destination: this connectd is built
// without the duckdb tag, so without cgo and DuckDB. A config of `type: duckdb` still
// loads, and opening it says which binary to run instead.
func addDuckDB(r *connector.Registry) {
	r.AddDestination("duckdb", duckdbconfig.NotBuilt{})
}
