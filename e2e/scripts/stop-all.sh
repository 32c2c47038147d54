#!/usr/bin/env bash
# stop-all.sh DIR [--clean]: stops every server the *-start.sh scripts started under
# DIR (PostgreSQL fast shutdown, MariaDB and versitygw by SIGTERM; SIGKILL after a
# grace period). With --clean it also removes their folders. Servers not running are
# skipped, so it is safe to run twice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: stop-all.sh DIR [--clean]"
dir=$1
clean=""
[ "${2:-}" != --clean ] || clean=1

if [ -f "$dir/pg/env" ]; then
	pid="$(sed -n 's/^PG_PID=//p' "$dir/pg/env")"
	bindir="$(sed -n 's/^PG_BINDIR=//p' "$dir/pg/env")"
	if [ -f "$dir/pg/data/postmaster.pid" ] && kill -0 "$pid" 2>/dev/null; then
		as_user postgres "$bindir/pg_ctl" stop -m fast -w -t 60 -D "$dir/pg/data" >/dev/null 2>&1 || true
	fi
	wait_gone "$pid" 10
fi
if [ -f "$dir/mariadb/env" ]; then
	pid="$(sed -n 's/^MARIADB_PID=//p' "$dir/mariadb/env")"
	kill "$pid" 2>/dev/null || true
	wait_gone "$pid" 60
fi
if [ -f "$dir/s3/env" ]; then
	pid="$(sed -n 's/^S3_PID=//p' "$dir/s3/env")"
	kill -CONT "$pid" 2>/dev/null || true # a paused gateway would ignore SIGTERM
	kill "$pid" 2>/dev/null || true
	wait_gone "$pid" 10
fi

if [ -n "$clean" ]; then
	for name in pg mariadb s3; do
		if [ -L "$dir/$name" ]; then rm -rf "$(readlink "$dir/$name")"; fi
		rm -rf "${dir:?}/$name"
	done
fi
