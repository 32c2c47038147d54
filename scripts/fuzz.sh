#!/usr/bin/env bash
# fuzz.sh [FUZZTIME]: runs every Fuzz target of the module, one at a time (go test
# -fuzz takes a single target), each for FUZZTIME (default 30s). Stops at the first
# target that finds a failure; the failing input is left in testdata/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-30s}

found=0
while IFS= read -r file; do
	dir="./$(dirname "$file")"
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*testing\.F).*/\1/p' "$file"); do
		found=$((found + 1))
		echo "== $dir $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$dir"
	done
done < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(.*testing\.F' . | sed 's|^\./||' | sort)

[ "$found" -gt 0 ] || { echo "fuzz.sh: no Fuzz targets found" >&2; exit 1; }
echo "fuzz.sh: $found targets ran for $fuzztime each"
