//go:build !duckdb

package builtin

import "github.com/connectd/connectd/connector"

// addDuckDB registers nothing: this connectd is built without the duckdb tag, so
// without cgo and DuckDB.
func addDuckDB(*connector.Registry) {}
