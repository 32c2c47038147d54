//go:build duckdb

package builtin_test

// destinationTypes are the destination kinds of a connectd built with -tags duckdb.
var destinationTypes = []string{"parquet", "postgres", "duckdb", "plugin"}
