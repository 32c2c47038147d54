# Shared helpers for the e2e/scripts/*-start.sh scripts; sourced, not run.
# The scripts start throwaway servers for the demo and benchmarks, each in its own
# folder under the DIR they are given, on free loopback ports, never touching the
# system instances on 5432/3306.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# free_port prints a loopback TCP port nobody listens on. It picks below the kernel's
# ephemeral range so outgoing connections cannot take it; the caller still retries
# when the server fails to bind (another process may win the race).
free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$(( (RANDOM * 32768 + RANDOM) % 12000 + 20000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

# as_user USER CMD... runs CMD as USER when we are root (PostgreSQL and MariaDB
# refuse to run as root), else as ourselves.
as_user() {
	local u=$1
	shift
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$u" -- "$@"
	else
		"$@"
	fi
}

# ensure_user USER creates the service account when we are root and it is missing.
ensure_user() {
	if [ "$(id -u)" = 0 ] && ! id "$1" >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /bin/false "$1"
	fi
}

# apt_install PKG... installs Debian packages (root only), refreshing the lists once
# if the first try fails.
apt_install() {
	[ "$(id -u)" = 0 ] || die "need $* but not root; install them first"
	command -v apt-get >/dev/null || die "need $* and there is no apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends "$@" >/dev/null; } ||
		die "apt-get install $* failed"
}

# server_dir DIR NAME USER makes DIR/NAME for a server run as USER and prints its
# real path. When USER cannot reach DIR (a home folder with mode 0700), the data
# goes to a folder under /tmp and DIR/NAME becomes a symlink to it.
server_dir() {
	local dir=$1 name=$2 user=$3 real
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	[ ! -e "$dir/$name" ] || die "$dir/$name already exists; stop it with stop-all.sh and remove it first"
	if [ "$(id -u)" = 0 ] && ! runuser -u "$user" -- test -x "$dir" 2>/dev/null; then
		real="$(mktemp -d "/tmp/connectd-$name.XXXXXX")"
		ln -s "$real" "$dir/$name"
	else
		real="$dir/$name"
		mkdir "$real"
	fi
	if [ "$(id -u)" = 0 ]; then chown "$user:" "$real"; fi
	echo "$real"
}

# short_socket_dir DIR prints DIR if a unix socket path inside it fits the 107-byte
# limit, else a fresh folder under /tmp.
short_socket_dir() {
	if [ "${#1}" -le 80 ]; then echo "$1"; else mktemp -d /tmp/connectd-sock.XXXXXX; fi
}

# wait_gone PID SECONDS waits for a process to end, then SIGKILLs it.
wait_gone() {
	local pid=$1 i
	for i in $(seq 1 $(( $2 * 10 ))); do
		kill -0 "$pid" 2>/dev/null || return 0
		# A zombie (an orphan under an init that does not reap) is gone for our purposes.
		[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
}
