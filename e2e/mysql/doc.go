// Package mysqle2e holds the end-to-end tests of the mysql source through the
// connectd binary: a MariaDB with row binlogs and an S3 server started by TestMain,
// `connectd sync`, `run` (killed and restarted) and `check` driven as a user would,
// and the lake read back with DuckDB and compared with what MariaDB returns.
package mysqle2e
