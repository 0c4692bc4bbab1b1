#!/usr/bin/env bash
# Dormant overhead, build time and binary size of graft build/test on the
# real modules of the integration test (fetched from the Go module proxy).
#
# Usage (from the repository root): bash bench/instrument/bench.sh
# Env: COUNT (runs per binary, default 10), BENCHTIME (default 100ms),
#      GRAFT (a prebuilt graft binary; default: built from ./cmd/graft).
set -u
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
COUNT=${COUNT:-10}
BENCHTIME=${BENCHTIME:-100ms}
if [ -n "${GRAFT:-}" ]; then cp "$GRAFT" "$tmp/graft"; else go build -o "$tmp/graft" ./cmd/graft || exit 1; fi
G="$tmp/graft"
# XDG_CACHE_HOME (used to give graft an empty cache) also moves go's build
# cache: pin it.
export GOCACHE="$(go env GOCACHE)"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "# graft build/test benchmarks"
echo
echo "command: COUNT=$COUNT BENCHTIME=$BENCHTIME GRAFT=${GRAFT:-<built>} bash bench/instrument/bench.sh"
echo
echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3-), $(date -u +%Y-%m-%dT%H:%MZ); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

: >"$tmp/plain.txt"; : >"$tmp/inst.txt"
echo "## Build time and binary size (go test -c / graft test -c)"
echo
echo "| module | plain cold | graft cold | plain warm | graft warm | plain size | graft size | size ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
# module@version=benchmark regexp (yaml.v3's 1000KB and Deep benchmarks take
# seconds per op: one op per run says nothing on a shared machine)
for spec in 'github.com/tidwall/gjson@v1.18.0=.' 'github.com/go-chi/chi/v5@v5.2.1=.' 'gopkg.in/yaml.v3@v3.0.1=Benchmark(1|10|100)KBMaps'; do
	modver=${spec%%=*}; bre=${spec#*=}
	dir=$(go mod download -json "$modver" | awk -F'"' '/"Dir"/ {print $4}')
	name=$(basename "${modver%@*}")
	case $name in v[0-9]*) name=$(basename "$(dirname "${modver%@*}")");; esac
	w="$tmp/$name"
	cp -r "$dir" "$w" && chmod -R u+w "$w"
	# cold: a fresh checkout (its packages in no cache: go's build cache
	# keys include the directory) and an empty graft cache; the standard
	# library and dependencies stay in go's build cache. warm: the same
	# command again.
	wp="$tmp/p-$name"; wg="$tmp/g-$name"
	cp -r "$w" "$wp"; cp -r "$w" "$wg"
	t0=$(now); (cd "$wp" && GOFLAGS=-mod=mod go test -c -o "$tmp/$name.plain" . >/dev/null 2>&1); t1=$(now)
	(cd "$wg" && XDG_CACHE_HOME="$tmp/xdg-$name" "$G" test -mod=mod -c -o "$tmp/$name.inst" . >/dev/null 2>&1); t2=$(now)
	(cd "$wp" && GOFLAGS=-mod=mod go test -c -o "$tmp/$name.plain" . >/dev/null 2>&1); t3=$(now)
	(cd "$wg" && XDG_CACHE_HOME="$tmp/xdg-$name" "$G" test -mod=mod -c -o "$tmp/$name.inst" . >/dev/null 2>&1); t4=$(now)
	w="$wp"
	ps=$(stat -c %s "$tmp/$name.plain"); is=$(stat -c %s "$tmp/$name.inst")
	echo "| $name | $(secs $t0 $t1) s | $(secs $t1 $t2) s | $(secs $t2 $t3) s | $(secs $t3 $t4) s | $ps | $is | $(awk -v a=$is -v b=$ps 'BEGIN{printf "%.3f", a/b}') |"
	# benchmarks, alternating plain and instrumented runs
	for i in $(seq "$COUNT"); do
		(cd "$w" && "$tmp/$name.plain" -test.run '^$' -test.bench "$bre" -test.benchtime "$BENCHTIME" -test.count 1 >>"$tmp/plain.txt" 2>/dev/null)
		(cd "$w" && "$tmp/$name.inst" -test.run '^$' -test.bench "$bre" -test.benchtime "$BENCHTIME" -test.count 1 >>"$tmp/inst.txt" 2>/dev/null)
	done
done
echo
echo "## Dormant overhead on the modules' own benchmarks ($COUNT alternating runs each, -test.benchtime $BENCHTIME)"
echo
(cd "$root/bench/instrument" && go run geomean.go "$tmp/plain.txt" "$tmp/inst.txt")
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
