# Shared by bench/proxy's scripts (sourced, not run): a temp dir removed
# on exit with every process started here, tool checks, free ports, and
# waiting for a URL to answer. Everything binds 127.0.0.1.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d "/tmp/graft-proxy-$(basename "$0" .sh).XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if declare -F on_exit >/dev/null; then on_exit; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

need() { # TOOL...
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
	done
}

freeport() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

waitfor() { # URL
	for _ in $(seq 200); do
		curl -fs -o /dev/null "$1" && return 0
		sleep 0.05
	done
	echo "no answer from $1" >&2
	return 1
}

# start_graft_proxy GRAFT NAME PORT: `GRAFT run --proxy` on 127.0.0.1:PORT
# in front of $tmp/backend (its generation 1), admin socket $tmp/NAME.sock,
# log $tmp/NAME.log; waits until it answers and sets started_pid.
start_graft_proxy() {
	"$1" run --admin "$tmp/$2.sock" --listen "web=127.0.0.1:$3" --proxy \
		-- "$tmp/backend" -addr '{addr}' >"$tmp/$2.log" 2>&1 &
	pids+=($!)
	started_pid=$!
	waitfor "http://127.0.0.1:$3/"
}

# serving GRAFT NAME FIELD: FIELD (addr, pid) of the generation the graft
# started by start_graft_proxy NAME serves.
serving() {
	"$1" status --admin "$tmp/$2.sock" --json |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print([g[sys.argv[1]] for g in d["generations"] if g["number"]==d["serving"]][0])' "$3"
}
