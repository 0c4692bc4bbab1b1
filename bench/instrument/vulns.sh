#!/usr/bin/env bash
# Reproduces real Go vulnerabilities (modules from the Go module proxy at
# their vulnerable versions, one harness per directory under vulns/) and
# checks whether switching on graft's latent check sites stops the crash or
# hang of the program built with graft build, with no code change.
#
# For each case: build plain and run the trigger; build with
#   graft build --instrument PATTERN   (PATTERN from vulns/CASE/pattern)
# run it dormant; run it again with every check site of PATTERN switched on
# (GRAFT_SITES, as `graft checks on` would); print a markdown table row.
#
# Usage (from the repository root): bash bench/instrument/vulns.sh
set -u
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${GRAFT:-}" ]; then cp "$GRAFT" "$tmp/graft"; else go build -o "$tmp/graft" ./cmd/graft || exit 1; fi
TIMEOUT=${TIMEOUT:-10}

run() { # bin [env...] → "exit|first interesting line"
	local bin=$1; shift
	local out code
	out=$(env "$@" timeout "$TIMEOUT" "$bin" 2>&1); code=$?
	case $code in
	124) echo "hang (killed after ${TIMEOUT}s)";;
	2) echo "crash: $(echo "$out" | grep -m1 -E '^(panic|fatal error):' | cut -c1-90)";;
	3) echo "error returned: $(echo "$out" | grep -m1 '^error:' | sed -E 's/.*graft: check ([^ ]+) stopped.*/check \1/; s/^error: //' | cut -c1-110)";;
	0) echo "ok: $(echo "$out" | tail -1 | cut -c1-60)";;
	*) echo "exit $code: $(echo "$out" | tail -1 | cut -c1-80)";;
	esac
}

echo "| case | module@version | plain build | graft build, dormant | graft build, sites of PATTERN on | sites on | stopped? |"
echo "|---|---|---|---|---|---|---|"
for d in "$root"/bench/instrument/vulns/*/; do
	name=$(basename "$d")
	pat=$(cat "$d/pattern")
	modver=$(awk '/^require/ && $2 != "(" {print $2"@"$3; exit}' "$d/go.mod")
	(cd "$d" && go build -o "$tmp/plain" . ) >/dev/null 2>&1 || { echo "| $name | $modver | build failed | | | | |"; continue; }
	(cd "$d" && "$tmp/graft" build --instrument "$pat" -o "$tmp/inst" . ) >"$tmp/build.log" 2>&1 || { echo "| $name | $modver | $(run "$tmp/plain") | graft build failed: $(tail -1 "$tmp/build.log") | | | |"; continue; }
	ids=$(cd "$root/bench/instrument/vulns" && go run sites.go "$tmp/inst.graft.json" "$pat")
	n=$(echo "$ids" | tr ',' '\n' | grep -c .)
	plain=$(run "$tmp/plain")
	dormant=$(run "$tmp/inst")
	on=$(run "$tmp/inst" "GRAFT_SITES=$ids")
	stopped=no
	case $on in "error returned: check "*) stopped=yes;; esac
	echo "| $name | $modver | $plain | $dormant | $on | $n | $stopped |"
done
