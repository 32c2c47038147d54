#!/usr/bin/env bash
# ensure-deps.sh: installs what the tests need and a fresh machine may lack: the
# PostgreSQL and MariaDB server binaries (Debian packages, root only) and the
# versitygw S3 gateway (go install into bin/). Each is skipped when already present,
# so it is cheap to run before every test run. The system instances the packages
# start are never used: tests start their own servers (internal/testenv).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSITYGW_MODULE=github.com/versity/versitygw/cmd/versitygw@v1.8.0

need=()
if ! { command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; } &&
	! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	need+=(postgresql)
fi
if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
	need+=(mariadb-server mariadb-client)
fi
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "ensure-deps: missing ${need[*]}; install them (not root, so not installing)" >&2
		exit 1
	fi
	echo "ensure-deps: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >/dev/null
	apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v versitygw >/dev/null && [ ! -x "$(go env GOPATH | cut -d: -f1)/bin/versitygw" ] && [ ! -x bin/versitygw ]; then
	echo "ensure-deps: installing $VERSITYGW_MODULE into bin/" >&2
	mkdir -p bin
	# The same lock as internal/testenv and e2e/scripts/s3-start.sh take.
	(
		flock 9
		[ -x bin/versitygw ] || (cd /tmp && GOBIN="$OLDPWD/bin" go install "$VERSITYGW_MODULE")
	) 9>bin/.versitygw.lock
fi
