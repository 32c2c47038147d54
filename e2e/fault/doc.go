// Package fault holds the fault-injection suite (docs/reliability.md): a seeded
// random workload runs against a real PostgreSQL while the real connectd binary streams
// it to Parquet on a real S3 server and on a local disk, and the suite kills connectd,
// cuts its replication connection, restarts the database, freezes S3 and fills the
// disk at random moments. It then rebuilds every table from the lake and checks, change
// by change, that nothing the source committed is missing and nothing appears twice.
// The warehouse tests (warehouse_test.go) do the same into a target PostgreSQL cluster
// through the postgres destination, merge and append, and also set the offsets store
// back and take the target's position away.
//
// `go test ./e2e/fault/` runs the short form (a few minutes); `-long` or FAULT_LONG=1
// (`make test-long`) runs thousands of faults. See docs/reliability.md.
package fault
