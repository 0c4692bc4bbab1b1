#!/usr/bin/env bash
# Self-healing's own cost on every proxied request, counted in instructions
# (callgrind), which are repeatable on a shared machine, beside go test's
# allocations. BenchmarkHealHooks calls the Inspect and Observe hooks
# in-process as the proxy does; each variant runs with N and 2N requests and
# the difference is divided by N, so start-up cancels out.
#
# The second table counts whole requests through a real proxy on loopback
# (BenchmarkProxyWithHealHooks: client, proxy and an httptest backend in one
# process) without hooks and with self-healing's: the difference is what the
# hooks cost every proxied request, the proxy's copies for them included.
#
# Usage (from the repository root): bash bench/heal/hooks.sh [N [M]]
# (N requests per in-process run, M per proxied run; 2N and 2M too.)
# Env: REV, a commit to measure instead of the working tree (its
# internal/heal with this tree's hooks_bench_test.go), for before/after.
set -eu
n=${1:-20000}
m=${2:-2000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=.
if [ -n "${REV:-}" ]; then
	src="$tmp/src"
	mkdir "$src"
	git archive "$REV" | tar -x -C "$src"
	cp internal/heal/hooks_bench_test.go "$src/internal/heal/"
fi
(cd "$src" && go test -c -o "$tmp/heal.test" ./internal/heal)
# callgrind trips over the Go runtime's asynchronous preemption signals.
export GODEBUG=asyncpreemptoff=1

count() { # bench n → instructions
	valgrind --tool=callgrind --callgrind-out-file=/dev/null "$tmp/heal.test" -test.run '^$' \
		-test.bench "$1" -test.benchtime "$2x" -test.cpu 1 2>&1 | awk '/Collected :/ {print $4}'
}

what="working tree at $(git rev-parse --short HEAD)"
if [ -n "${REV:-}" ]; then what="commit $REV"; fi
echo "# self-healing hooks per request, $(date -u +%Y-%m-%dT%H:%MZ), $(go version | cut -d' ' -f3-), $what"
echo "# ${REV:+REV=$REV }bash bench/heal/hooks.sh $n $m"
echo
echo "| variant | ns/op | B/op | allocs/op | instructions/op |"
echo "|---|---:|---:|---:|---:|"
for v in rules=0/GET rules=0/POST rules=1/GET rules=1/POST; do
	bre="^BenchmarkHealHooks\$/^${v//\//\$/^}\$"
	read -r ns bytes allocs < <("$tmp/heal.test" -test.run '^$' -test.bench "$bre" -test.benchtime "$((5 * n))x" \
		-test.benchmem -test.cpu 1 | awk '/ns\/op/ {print $3, $5, $7}')
	i1=$(count "$bre" "$n")
	i2=$(count "$bre" $((2 * n)))
	echo "| $v | $ns | $bytes | $allocs | $(((i2 - i1) / n)) |"
done

echo
echo "| through the proxy | B/op | allocs/op | instructions/op | hooks' instructions/op |"
echo "|---|---:|---:|---:|---:|"
for method in GET POST; do
	base=0
	for hooks in nohooks heal heal+rule heal-sampleall heal-samplenone; do
		bre="^BenchmarkProxyWithHealHooks\$/^${hooks//+/\\+}\$/^$method\$"
		allocs=
		read -r bytes allocs < <("$tmp/heal.test" -test.run '^$' -test.bench "$bre" -test.benchtime "$((5 * m))x" \
			-test.benchmem -test.cpu 1 | awk '/allocs\/op/ {print $(NF-3), $(NF-1)}') || true
		if [ -z "${allocs:-}" ]; then continue; fi # a variant REV does not have
		i1=$(count "$bre" "$m")
		i2=$(count "$bre" $((2 * m)))
		per=$(((i2 - i1) / m))
		if [ "$hooks" = nohooks ]; then base=$per; fi
		echo "| $hooks/$method | $bytes | $allocs | $per | $((per - base)) |"
	done
done
