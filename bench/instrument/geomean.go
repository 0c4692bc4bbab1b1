//go:build ignore

// geomean reads `go test -bench` output of a plain and an instrumented test
// binary (run alternately, several counts each) and prints, per benchmark,
// the minimum ns/op of each (on a shared machine the least disturbed run)
// and their ratio, then the geometric mean of the ratios.
//
//	go run geomean.go PLAIN.txt INSTRUMENTED.txt
package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

func read(path string) map[string][]float64 {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	out := map[string][]float64{}
	sc := bufio.NewScanner(f)
	var pkg string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "pkg:" {
			pkg = fields[1]
		}
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		for i := 2; i+1 < len(fields); i++ {
			if fields[i+1] == "ns/op" {
				v, err := strconv.ParseFloat(fields[i], 64)
				if err == nil {
					name := pkg + "." + fields[0]
					out[name] = append(out[name], v)
				}
			}
		}
	}
	return out
}

func minimum(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = math.Min(m, x)
	}
	return m
}

func main() {
	plain, inst := read(os.Args[1]), read(os.Args[2])
	var names []string
	for n := range plain {
		if _, ok := inst[n]; ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	sum := 0.0
	fmt.Println("| benchmark | plain ns/op (min) | instrumented ns/op (min) | ratio |")
	fmt.Println("|---|---:|---:|---:|")
	for _, n := range names {
		p, i := minimum(plain[n]), minimum(inst[n])
		r := i / p
		sum += math.Log(r)
		fmt.Printf("| %s | %.1f | %.1f | %.3f |\n", n, p, i, r)
	}
	if len(names) > 0 {
		fmt.Printf("\ngeomean of instrumented/plain over %d benchmarks: %.3f\n", len(names), math.Exp(sum/float64(len(names))))
	}
}
