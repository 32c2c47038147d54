// Package e2e holds connectd's end-to-end tests: the connectd binary, built once per
// run, against real servers started by the testenv package (PostgreSQL with logical
// replication, an S3 gateway), with the lake read back through DuckDB.
//
// The tests live in _test.go files; run them with `go test ./e2e/`.
package e2e
