#!/usr/bin/env bash
# s3-start.sh DIR [BUCKET...]: starts a throwaway S3 server (versitygw, posix backend)
# in DIR/s3 on a free loopback port, creates the buckets named, and prints shell
# assignments: S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, S3_PID and the
# same credentials as AWS_* for the standard AWS chain. Stop it with stop-all.sh DIR.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || die "usage: s3-start.sh DIR [BUCKET...]"
VERSITYGW_MODULE=github.com/versity/versitygw/cmd/versitygw@v1.8.0
dir=$1
shift

bin="$(command -v versitygw || true)"
if [ -z "$bin" ] && command -v go >/dev/null; then
	for d in "$(go env GOPATH | cut -d: -f1)/bin" "$REPO_ROOT/bin"; do
		if [ -x "$d/versitygw" ]; then bin="$d/versitygw"; break; fi
	done
fi
if [ -z "$bin" ]; then
	command -v go >/dev/null || die "versitygw not found and no go to install it"
	gobin="$REPO_ROOT/bin"
	mkdir -p "$gobin" 2>/dev/null && [ -w "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
	mkdir -p "$gobin"
	# One install at a time (the Go tests take the same lock); re-check once we hold it.
	(
		flock 9
		[ -x "$gobin/versitygw" ] || (cd /tmp && GOBIN="$gobin" go install "$VERSITYGW_MODULE" >&2)
	) 9>"$gobin/.versitygw.lock" || die "go install $VERSITYGW_MODULE failed"
	bin="$gobin/versitygw"
fi

s3dir="$(server_dir "$dir" s3 "$(id -un)")"
mkdir -p "$s3dir/data"
access=connectd-demo-access
secret=connectd-demo-secret-key
region=us-east-1

started=""
for attempt in 1 2 3 4 5; do
	port="$(free_port)"
	setsid nohup "$bin" --access "$access" --secret "$secret" --region "$region" \
		--port "127.0.0.1:$port" --quiet posix "$s3dir/data" >>"$s3dir/versitygw.log" 2>&1 </dev/null &
	pid=$!
	for i in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || break
		if curl -s -o /dev/null "http://127.0.0.1:$port/"; then started=1; break; fi
		sleep 0.1
	done
	[ -z "$started" ] || break
	kill -9 "$pid" 2>/dev/null || true
	grep -q "address already in use" "$s3dir/versitygw.log" || break
done
[ -n "$started" ] || die "versitygw did not start; log tail:
$(tail -30 "$s3dir/versitygw.log")"

echo "$pid" >"$s3dir/versitygw.pid"
cat >"$s3dir/env" <<ENV
S3_ENDPOINT=http://127.0.0.1:$port
S3_ACCESS_KEY=$access
S3_SECRET_KEY=$secret
S3_REGION=$region
S3_PID=$pid
S3_DIR=$s3dir
AWS_ACCESS_KEY_ID=$access
AWS_SECRET_ACCESS_KEY=$secret
AWS_REGION=$region
ENV

# Buckets are created through the API (curl signs SigV4 itself), so the gateway
# records their owner as it would for any client.
empty_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
for b in "$@"; do
	code="$(curl -s -o "$s3dir/create-$b.out" -w '%{http_code}' -X PUT \
		-H "x-amz-content-sha256: $empty_sha256" --aws-sigv4 "aws:amz:$region:s3" --user "$access:$secret" "http://127.0.0.1:$port/$b")"
	[ "$code" = 200 ] || { kill "$pid"; die "create bucket $b: HTTP $code: $(cat "$s3dir/create-$b.out")"; }
done
cat "$s3dir/env"
