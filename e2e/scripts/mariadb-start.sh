#!/usr/bin/env bash
# mariadb-start.sh DIR: starts a throwaway MariaDB with a row-based binlog and strict
# GTIDs in DIR/mariadb on a free loopback port and prints shell assignments:
# MYSQL_DSN, MARIADB_PORT, MARIADB_PID, MARIADB_DIR. root has no password.
# Stop it with stop-all.sh DIR.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || die "usage: mariadb-start.sh DIR"

find_bin() { for n in "$@"; do for d in $(echo "$PATH" | tr : ' ') /usr/sbin /usr/bin; do
	if [ -x "$d/$n" ]; then echo "$d/$n"; return 0; fi; done; done; return 0; }
server="$(find_bin mariadbd mysqld)"
install="$(find_bin mariadb-install-db mysql_install_db)"
admin="$(find_bin mariadb-admin mysqladmin)"
if [ -z "$server" ] || [ -z "$install" ] || [ -z "$admin" ]; then
	apt_install mariadb-server mariadb-client
	server="$(find_bin mariadbd mysqld)"
	install="$(find_bin mariadb-install-db mysql_install_db)"
	admin="$(find_bin mariadb-admin mysqladmin)"
fi
[ -n "$server" ] && [ -n "$install" ] && [ -n "$admin" ] || die "no MariaDB server binaries found"

ensure_user mysql
mdir="$(server_dir "$1" mariadb mysql)"
sockdir="$(short_socket_dir "$mdir")"
[ "$(id -u)" != 0 ] || chown mysql: "$sockdir"

as_user mysql "$install" --no-defaults --datadir="$mdir/data" --auth-root-authentication-method=normal \
	--skip-test-db >"$mdir/install-db.log" 2>&1 || die "mariadb-install-db failed: $(tail -20 "$mdir/install-db.log")"

started=""
for attempt in 1 2 3 4 5; do
	port="$(free_port)"
	cat >"$mdir/my.cnf" <<CONF
[mariadbd]
datadir = $mdir/data
socket = $sockdir/mariadbd.sock
pid-file = $mdir/mariadbd.pid
log-error = $mdir/mariadbd.log
port = $port
bind-address = 127.0.0.1
skip-name-resolve = ON
log_bin = binlog
binlog_format = ROW
binlog_row_image = FULL
server_id = 1
gtid_strict_mode = ON
character_set_server = utf8mb4
collation_server = utf8mb4_general_ci
default_time_zone = +00:00
innodb_buffer_pool_size = 256M
CONF
	as_user mysql setsid nohup "$server" --defaults-file="$mdir/my.cnf" >/dev/null 2>&1 </dev/null &
	for i in $(seq 1 600); do
		if [ -s "$mdir/mariadbd.pid" ] && "$admin" --no-defaults --protocol=TCP -h 127.0.0.1 -P "$port" -u root ping >/dev/null 2>&1; then
			started=1
			break
		fi
		# The server is gone when it has removed its pid file or never wrote one in time.
		grep -q "Aborting" "$mdir/mariadbd.log" 2>/dev/null && break
		sleep 0.1
	done
	[ -z "$started" ] || break
	if [ -s "$mdir/mariadbd.pid" ]; then kill -9 "$(cat "$mdir/mariadbd.pid")" 2>/dev/null || true; fi
	grep -q "Address already in use" "$mdir/mariadbd.log" 2>/dev/null || break
	: >"$mdir/mariadbd.log"
done
[ -n "$started" ] || die "MariaDB did not start; log tail:
$(tail -30 "$mdir/mariadbd.log" 2>/dev/null)"

cat >"$mdir/env" <<ENV
MYSQL_DSN=mysql://root@127.0.0.1:$port/
MARIADB_PORT=$port
MARIADB_PID=$(cat "$mdir/mariadbd.pid")
MARIADB_DIR=$mdir
ENV
cat "$mdir/env"
