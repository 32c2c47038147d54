//go:build !duckdb

package builtin_test

// destinationTypes are the destination kinds of a connectd built without tags.
var destinationTypes = []string{"parquet", "postgres", "plugin"}
