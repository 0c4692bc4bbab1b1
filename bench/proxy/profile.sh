#!/usr/bin/env bash
# Where `graft run --proxy` spends its CPU under load: perf samples (with
# call graphs) of the graft process while wrk drives it in front of
# bench/proxy/backend, then two tables: the hottest functions by self
# time, and the share of samples under each function of interest
# (inclusive: the hooks, the request copies, allocation and collection).
#
#   bench/proxy/profile.sh                       # builds cmd/graft
#   GRAFT_BIN=/path/to/graft DURATION=10s bench/proxy/profile.sh
#
# Needs perf (linux-perf) and wrk. Everything binds 127.0.0.1; every
# process started here is stopped on exit.
set -euo pipefail

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}

# shellcheck source=bench/proxy/lib.sh
. "$(dirname "$0")/lib.sh"
on_exit() { if [ -n "${KEEP:-}" ]; then cp "$tmp/perf.data" "$KEEP" 2>/dev/null || true; fi; }
need wrk perf go curl python3

cd "$root"
go build -o "$tmp/backend" ./bench/proxy/backend
graft=${GRAFT_BIN:-}
if [ -z "$graft" ]; then
	go build -o "$tmp/graft" ./cmd/graft
	graft=$tmp/graft
fi
port=$(freeport)
start_graft_proxy "$graft" graft "$port"
graftpid=$started_pid

wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$port/" >"$tmp/wrk.txt" &
pids+=($!)
wrkpid=$!
sleep 1
secs=${DURATION%s}
perf record -q -g -F 999 -o "$tmp/perf.data" -p "$graftpid" -- sleep $((secs - 2))
wait "$wrkpid" || true
set +o pipefail # head ends perf report's output early

echo "# bench/proxy/profile.sh: perf record -g -F 999 on graft run --proxy under wrk -t$THREADS -c$CONNS -d$DURATION; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); $("$graft" version 2>/dev/null | head -1)"
awk '/Requests\/sec/ {print "# " $0}' "$tmp/wrk.txt"
echo
echo "## self time, top 25"
perf report -i "$tmp/perf.data" --no-children --stdio --sort sym 2>/dev/null |
	awk '/^ +[0-9.]+%/ {print}' | head -25
echo
echo "## inclusive share of samples"
perf report -i "$tmp/perf.data" --children --stdio --sort sym -g none 2>/dev/null |
	awk '/^ +[0-9.]+% +[0-9.]+%/ {sub(/ +$/, ""); print}' |
	grep -E 'heal\.|proxy\.\(\*exchange\)\.(snapshot|completed|admitted|run|forward|relay)|proxy\.\(\*View\)|runtime\.(mallocgc|gcBgMarkWorker|gcDrain)$|syscall\.Syscall$|runtime\.(findRunnable|schedule)$|CanonicalMIMEHeaderKey' |
	head -40
