#!/usr/bin/env bash
# Runs connectd's benchmarks: plugins against built-in connectors (bench/plugin), the
# MySQL source against mariadb-binlog (bench/mysql), then the PostgreSQL benchmark
# (bench/pg) with the sizes docs/benchmarks.md reports. Override them from the environment for a quick run:
#   ROWS=200000 FIRENIBBLE_ROWS=200000 CHANGES=50000 BIGTX=200000 IDLE=30s ./bench/run.sh
# Extra arguments go to the program (e.g. -skip idle, -keep); see `go run ./bench/pg -h`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${SKIP_PLUGIN:-}" ] || go run ./bench/plugin -n "${PLUGIN_RECORDS:-1000000}" # plugins against built-in (bench/plugin); SKIP_PLUGIN=1 skips it
[ -n "${SKIP_MYSQL:-}" ] || go run ./bench/mysql -changes "${CHANGES:-1000000}" -rows "${MYSQL_ROWS:-200000}" # MySQL part (bench/mysql); SKIP_MYSQL=1 skips it
[ -n "${SKIP_WAREHOUSE:-}" ] || go run -tags duckdb_arrow ./bench/warehouse -rows "${WAREHOUSE_ROWS:-1000000}" # database destinations against COPY / read_parquet (bench/warehouse); SKIP_WAREHOUSE=1 skips it
exec go run ./bench/pg \
	-rows "${ROWS:-5000000}" \
	-firenibble-rows "${FIRENIBBLE_ROWS:-10000000}" \
	-changes "${CHANGES:-1000000}" \
	-bigtx "${BIGTX:-5000000}" \
	-idle "${IDLE:-2m}" \
	"$@"
