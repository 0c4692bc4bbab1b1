#!/usr/bin/env bash
# Dormant overhead of graft build/test counted in instructions, not seconds:
# valgrind's callgrind counts the instructions a benchmark executes, which is
# repeatable whatever else the machine is doing. For each benchmark it runs
# the plain and the instrumented test binary with N and 2N iterations and
# takes the difference, so process start-up (and graft's registry init)
# cancels out: what remains is the instructions of N iterations.
#
# Usage (from the repository root): bash bench/instrument/callgrind.sh
# Env: GRAFT (a prebuilt graft binary; default: built from ./cmd/graft).
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${GRAFT:-}" ]; then cp "$GRAFT" "$tmp/graft"; else go build -o "$tmp/graft" ./cmd/graft; fi
export GOCACHE="$(go env GOCACHE)"
# callgrind trips over the Go runtime's asynchronous preemption signals.
export GODEBUG=asyncpreemptoff=1
# The garbage collector's background work interleaves with the benchmark
# differently from run to run (it depends on thread scheduling), which made
# allocation-heavy benchmarks (yaml.v3) vary by ±10 % between identical
# runs. GOGC=off counts the mutator only: allocations still count (mallocgc
# is the mutator's), the collector's work does not. bench.sh times with the
# collector on.
export GOGC=off

count() { # binary dir bench n → instructions
	(cd "$2" && valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" -test.run '^$' -test.bench "$3" -test.benchtime "$4x" -test.cpu 1 2>&1) |
		awk '/Collected :/ {print $4}'
}

echo "# dormant overhead in instructions (callgrind), $(date -u +%Y-%m-%dT%H:%MZ), $(go version | cut -d' ' -f3-)"
echo
echo "command: GRAFT=${GRAFT:-<built>} bash bench/instrument/callgrind.sh (GODEBUG=asyncpreemptoff=1 GOGC=off; N and 2N iterations, difference)"
echo
echo "| benchmark | N | plain instructions / N | instrumented instructions / N | ratio |"
echo "|---|---:|---:|---:|---:|"
ratios=()
modratios=()
# module@version benchmark-regexp N
while read -r modver bre n; do
	dir=$(go mod download -json "$modver" | awk -F'"' '/"Dir"/ {print $4}')
	w="$tmp/$(echo "$modver" | tr '/@' '__')"
	if [ ! -d "$w" ]; then
		cp -r "$dir" "$w" && chmod -R u+w "$w"
		(cd "$w" && GOFLAGS=-mod=mod go test -c -o plain.test . >/dev/null)
		(cd "$w" && XDG_CACHE_HOME="$tmp/xdg" "$tmp/graft" test -mod=mod -c -o inst.test . >/dev/null)
	fi
	p1=$(count "$w/plain.test" "$w" "$bre" "$n"); p2=$(count "$w/plain.test" "$w" "$bre" $((2 * n)))
	i1=$(count "$w/inst.test" "$w" "$bre" "$n"); i2=$(count "$w/inst.test" "$w" "$bre" $((2 * n)))
	r=$(awk -v p=$((p2 - p1)) -v i=$((i2 - i1)) 'BEGIN { printf "%.4f", i / p }')
	ratios+=("$r")
	case $bre in *GoStdlib*) ;; *) modratios+=("$r");; esac
	echo "| ${modver%@*} $bre | $n | $(((p2 - p1) / n)) | $(((i2 - i1) / n)) | $r |"
done <<'LIST'
github.com/tidwall/gjson@v1.18.0 ^BenchmarkValid$ 20000
github.com/tidwall/gjson@v1.18.0 ^BenchmarkValidBytes$ 20000
github.com/tidwall/gjson@v1.18.0 ^BenchmarkGoStdlibValidBytes$ 5000
github.com/go-chi/chi/v5@v5.2.1 ^BenchmarkMux$ 20000
github.com/go-chi/chi/v5@v5.2.1 ^BenchmarkTreeGet$ 100000
gopkg.in/yaml.v3@v3.0.1 ^Benchmark1KBMaps$ 500
gopkg.in/yaml.v3@v3.0.1 ^Benchmark10KBMaps$ 50
LIST
echo
printf '%s\n' "${ratios[@]}" | awk '{ s += log($1); n++ } END { printf "geomean of instrumented/plain instructions over %d benchmarks: %.4f\n", n, exp(s / n) }'
printf '%s\n' "${modratios[@]}" | awk '{ s += log($1); n++ } END { printf "geomean over the %d module benchmarks (the issue'"'"'s figure, control left out): %.4f\n", n, exp(s / n) }'
echo "(BenchmarkGoStdlibValidBytes runs only the standard library, which graft does not instrument: a control.)"
