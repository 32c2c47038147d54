#!/usr/bin/env bash
# pg-start.sh DIR: starts a throwaway PostgreSQL with wal_level=logical in DIR/pg on a
# free loopback port and prints shell assignments: PG_DSN, PG_PORT, PG_PID, PG_DIR.
# Stop it with stop-all.sh DIR.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || die "usage: pg-start.sh DIR"

bindir=""
if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
	bindir="$(pg_config --bindir)"
fi
if [ -z "$bindir" ]; then
	bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n | tail -1 || true)"
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
	apt_install postgresql
	bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -t/ -k5 -n | tail -1)"
fi
[ -x "$bindir/pg_ctl" ] || die "no PostgreSQL server binaries found"

ensure_user postgres
pgdir="$(server_dir "$1" pg postgres)"
sockdir="$(short_socket_dir "$pgdir")"
[ "$(id -u)" != 0 ] || chown postgres: "$sockdir"

as_user postgres "$bindir/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$pgdir/initdb.log" 2>&1 ||
	die "initdb failed: $(tail -20 "$pgdir/initdb.log")"
cat >>"$pgdir/data/postgresql.conf" <<CONF

# connectd e2e/scripts/pg-start.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sockdir'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
shared_buffers = 128MB
max_connections = 100
timezone = 'UTC'
CONF

started=""
for attempt in 1 2 3 4 5; do
	port="$(free_port)"
	echo "port = $port" >>"$pgdir/data/postgresql.conf"
	if as_user postgres "$bindir/pg_ctl" start -w -t 60 -D "$pgdir/data" -l "$pgdir/postgres.log" >/dev/null 2>&1; then
		started=1
		break
	fi
	grep -q "could not bind\|could not create any TCP/IP sockets" "$pgdir/postgres.log" || break
done
if [ -z "$started" ]; then
	# pg_ctl -w may give up while the postmaster still runs; leave nothing behind.
	as_user postgres "$bindir/pg_ctl" stop -m immediate -D "$pgdir/data" >/dev/null 2>&1 || true
fi
[ -n "$started" ] || die "PostgreSQL did not start; log tail:
$(tail -30 "$pgdir/postgres.log")"

pid="$(head -1 "$pgdir/data/postmaster.pid")"
cat >"$pgdir/env" <<ENV
PG_DSN=postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable
PG_PORT=$port
PG_PID=$pid
PG_DIR=$pgdir
PG_BINDIR=$bindir
ENV
cat "$pgdir/env"
