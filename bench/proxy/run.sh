#!/usr/bin/env bash
# Proxy-mode overhead, side by side in one run: wrk against a small Go JSON
# backend hit directly, through `graft run --proxy`, and through nginx
# (1 worker, keep-alive upstream) in front of the same backend process.
# With HARNESS=1 it also measures internal/proxy alone (bench/proxy/graftproxy,
# "harness": no supervisor around it; "harness1": the same with GOMAXPROCS=1)
# and Go's stock httputil.ReverseProxy ("stdlib", the harness with -stdlib).
#
#   bench/proxy/run.sh                 # 3 rounds of wrk -t2 -c32 -d10s --latency
#   ROUNDS=1 DURATION=3s bench/proxy/run.sh
#   GRAFT_BIN=/path/to/graft bench/proxy/run.sh   # a prebuilt graft binary
#   GRAFT_BEFORE=/path/to/old/graft bench/proxy/run.sh
#       # also measures another graft binary ("graft0", e.g. the commit
#       # before a change) in the same rounds, in front of its own
#       # generation 1 (the same backend program)
#
# If cmd/graft does not build, only the harness is measured (and said so).
# Everything binds 127.0.0.1; every process started here is stopped on exit.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
HARNESS=${HARNESS:-0}

# shellcheck source=bench/proxy/lib.sh
. "$(dirname "$0")/lib.sh"
need wrk nginx go curl python3

cd "$root"
go build -o "$tmp/backend" ./bench/proxy/backend
go build -o "$tmp/graftproxy" ./bench/proxy/graftproxy
graft=${GRAFT_BIN:-}
if [ -z "$graft" ]; then
	if go build -o "$tmp/graft" ./cmd/graft; then
		graft=$tmp/graft
	else
		echo "# cmd/graft does not build: measuring internal/proxy alone (harness) only" >&2
		HARNESS=1
	fi
fi

if [ -n "$graft" ]; then
	# graft run --proxy starts the backend as its generation 1.
	gport=$(freeport)
	start_graft_proxy "$graft" graft "$gport"
	graftpid=$started_pid
	baddr=$(serving "$graft" graft addr)
	backendpid=$(serving "$graft" graft pid)
	if [ -n "${GRAFT_BEFORE:-}" ]; then
		g0port=$(freeport)
		start_graft_proxy "$GRAFT_BEFORE" graft0 "$g0port"
		graft0pid=$started_pid
		backend0pid=$(serving "$graft" graft0 pid)
	fi
else
	baddr=127.0.0.1:$(freeport)
	"$tmp/backend" -addr "$baddr" &
	pids+=($!)
	backendpid=$!
fi
waitfor "http://$baddr/"

# nginx as a user-level process with its own prefix, config, pid and logs.
nport=$(freeport)
mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  upstream backend { server $baddr; keepalive 64; }
  server {
    listen 127.0.0.1:$nport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" &
pids+=($!)
nginxpid=$!
waitfor "http://127.0.0.1:$nport/"

# CPU time (user+system, clock ticks) of the processes serving a target:
# the proxy's own cost per request, which the shared machine disturbs far
# less than throughput.
cputicks() {
	local total=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		total=$((total + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
	done
	echo "$total"
}
servers() { # target name → pids of the processes doing its work
	case $1 in
	direct) echo "$backendpid" ;;
	graft) echo "$graftpid" ;;
	graft0) echo "$graft0pid" ;;
	nginx) echo "$nginxpid $(pgrep -P "$nginxpid" | tr '\n' ' ')" ;;
	harness) echo "$harnesspid" ;;
	harness1) echo "$harness1pid" ;;
	stdlib) echo "$stdlibpid" ;;
	esac
}
hz=$(getconf CLK_TCK)

targets=(direct "http://$baddr/")
if [ -n "$graft" ]; then
	targets+=(graft "http://127.0.0.1:$gport/")
	if [ -n "${GRAFT_BEFORE:-}" ]; then
		targets+=(graft0 "http://127.0.0.1:$g0port/")
	fi
fi
targets+=(nginx "http://127.0.0.1:$nport/")
if [ "$HARNESS" = 1 ]; then
	hport=$(freeport)
	"$tmp/graftproxy" -listen "127.0.0.1:$hport" -backend "$baddr" &
	pids+=($!)
	harnesspid=$!
	waitfor "http://127.0.0.1:$hport/"
	targets+=(harness "http://127.0.0.1:$hport/")
	# The same with GOMAXPROCS=1: on a 2-core machine shared with the
	# backend and wrk, one P avoids the scheduler handing work across threads.
	h1port=$(freeport)
	GOMAXPROCS=1 "$tmp/graftproxy" -listen "127.0.0.1:$h1port" -backend "$baddr" &
	pids+=($!)
	harness1pid=$!
	waitfor "http://127.0.0.1:$h1port/"
	targets+=(harness1 "http://127.0.0.1:$h1port/")
	sport=$(freeport)
	"$tmp/graftproxy" -stdlib -listen "127.0.0.1:$sport" -backend "$baddr" &
	pids+=($!)
	stdlibpid=$!
	waitfor "http://127.0.0.1:$sport/"
	targets+=(stdlib "http://127.0.0.1:$sport/")
fi

# wrk latency lines look like "99%    2.10ms"; print milliseconds.
tomillis() {
	awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.2f", v}'
}

results="$tmp/results"
: >"$results"
for round in $(seq "$ROUNDS"); do
	for ((i = 0; i < ${#targets[@]}; i += 2)); do
		name=${targets[i]} url=${targets[i + 1]}
		procs=$(servers "$name")
		# shellcheck disable=SC2086
		bpid=$backendpid
		if [ "$name" = graft0 ]; then bpid=$backend0pid; fi
		c0=$(cputicks $procs) b0=$(cputicks "$bpid")
		out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$url")
		# shellcheck disable=SC2086
		c1=$(cputicks $procs) b1=$(cputicks "$bpid")
		reqs=$(awk '/requests in/ {print $1}' <<<"$out")
		cpu=$(awk -v t=$((c1 - c0)) -v n="$reqs" -v hz="$hz" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
		bcpu=$(awk -v t=$((b1 - b0)) -v n="$reqs" -v hz="$hz" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
		rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		p50=$(awk '$1=="50%" {print $2}' <<<"$out" | tomillis)
		p99=$(awk '$1=="99%" {print $2}' <<<"$out" | tomillis)
		errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
		echo "$round $name $rps $p50 $p99 $cpu $bcpu $errs" >>"$results"
	done
done

echo "# wrk -t$THREADS -c$CONNS -d$DURATION --latency, $ROUNDS rounds; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# graft = graft run --proxy (supervisor + internal/proxy)${GRAFT_BEFORE:+; graft0 = $GRAFT_BEFORE run --proxy, its own backend}; backend = bench/proxy/backend (Go net/http, 50-byte JSON)"
echo "# cpu_us = CPU time per request of the target's own processes (the backend itself for direct); backend_us = the backend's"
printf '%-6s %-8s %10s %8s %8s %8s %8s %10s %s\n' round target req/s ratio p50_ms p99_ms cpu_us backend_us errors
awk '
	$2=="direct" {d[$1]=$3}
	{ e=""; for (i=8; i<=NF; i++) e=e" "$i; printf "%-6s %-8s %10.0f %8.2f %8s %8s %8s %10s%s\n", $1, $2, $3, $3/d[$1], $4, $5, $6, $7, e }
' "$results"
echo
echo "# median over rounds (ratio = median of the per-round ratios to direct)"
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
direct = {r[0]: float(r[2]) for r in rows if r[1] == "direct"}
order = []
for r in rows:
    if r[1] not in order:
        order.append(r[1])
print("%-8s %10s %8s %8s %8s %8s %10s" % ("target", "req/s", "ratio", "p50_ms", "p99_ms", "cpu_us", "backend_us"))
for t in order:
    rs = [r for r in rows if r[1] == t]
    med = lambda i: statistics.median(float(r[i]) for r in rs)
    ratio = statistics.median(float(r[2]) / direct[r[0]] for r in rs)
    print("%-8s %10.0f %8.2f %8.2f %8.2f %8.1f %10.1f" % (t, med(2), ratio, med(3), med(4), med(5), med(6)))
PY
if grep -q "Non-2xx\|Socket errors" "$results"; then
	echo
	echo "# errors reported by wrk:"
	grep "Non-2xx\|Socket errors" "$results"
fi
