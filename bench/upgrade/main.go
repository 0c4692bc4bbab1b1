// Command upgrade benchmarks graft's live upgrades: N back-to-back upgrades
// under load (keep-alive clients sending GETs and POSTs on their own
// connections, plus clients opening a fresh connection per request) in each
// mode, printing requests, failures (keep-alive and fresh separately) and
// the cutover latency: from the new generation's readiness to the first
// answer a client got from it.
//
//	go run ./bench/upgrade -n 100
//
// It runs the supervisor in-process (the same package graft run uses) with
// the test fixture internal/supervisor/testdata/fixture as the service.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/loadtest"
	"github.com/graftdev/graft/internal/supervisor"
)

func main() {
	listener.MaybeShim()
	n := flag.Int("n", 100, "upgrades per mode")
	keepAlive := flag.Int("keepalive", 16, "keep-alive clients")
	fresh := flag.Int("fresh", 1, "clients opening a fresh connection per request")
	modes := flag.String("modes", "socket,socket-ctl,proxy", "comma-separated: socket, socket-ctl, proxy, python")
	flag.Parse()

	dir, err := os.MkdirTemp("", "graft-bench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	fixture := filepath.Join(dir, "fixture")
	if out, err := exec.Command("go", "build", "-o", fixture, "./internal/supervisor/testdata/fixture").CombinedOutput(); err != nil {
		fail(fmt.Errorf("build fixture (run from the module root): %v\n%s", err, out))
	}
	fmt.Printf("# go run ./bench/upgrade %s\n", strings.Join(os.Args[1:], " "))
	fmt.Printf("# %s, %d cores visible, %d upgrades per mode, %d keep-alive clients + %d fresh-connection clients\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), numCPU(), *n, *keepAlive, *fresh)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tupgrades\trequests\tposts\tfailed keep-alive\tfailed fresh\tcutover p50\tcutover p99\tcutover max\tserved before ready\tfirst answer p50\tfirst answer p99\tgraft ready→serving p99\tupgrade p50\t")
	for _, mode := range strings.Split(*modes, ",") {
		r, err := bench(mode, fixture, *n, *keepAlive, *fresh)
		if err != nil {
			fail(fmt.Errorf("%s: %w", mode, err))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", mode, r.upgrades, r.load.Requests, r.load.Posts,
			r.load.KeepAliveFailures, r.load.FreshFailures, pct(r.cutover, 50), pct(r.cutover, 99), pct(r.cutover, 100), r.early,
			pct(r.answer, 50), pct(r.answer, 99), pct(r.decide, 99), pct(r.upgrade, 50))
		if len(r.load.Errors) > 0 {
			fmt.Fprintf(os.Stderr, "%s errors: %q\n", mode, r.load.Errors)
		}
	}
	tw.Flush()
}

type result struct {
	upgrades int
	load     loadtest.Result
	cutover  []time.Duration // ready → the new generation served its first request (its own clock)
	answer   []time.Duration // ready → a client got the first answer from it
	upgrade  []time.Duration
	decide   []time.Duration // graft's own part: ready event → serving event
	early    int             // new generation served before graft saw it ready (socket mode: it accepts at once)
}

// firstServed collects the fixture's "first-request UNIXNANO" stdout lines.
type firstServed struct {
	mu    sync.Mutex
	times map[int]time.Time
	buf   []byte
}

func (f *firstServed) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			break
		}
		line := string(f.buf[:i])
		f.buf = f.buf[i+1:]
		var gen int
		var ns int64
		if _, err := fmt.Sscanf(line, "[gen %d stdout] first-request %d", &gen, &ns); err == nil {
			f.times[gen] = time.Unix(0, ns)
		}
	}
	return len(p), nil
}

func (f *firstServed) get(gen int) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.times[gen]
	return t, ok
}

func bench(mode, fixture string, n, keepAlive, fresh int) (*result, error) {
	served := &firstServed{times: map[int]time.Time{}}
	opts := supervisor.Options{
		Listen:    []listener.Spec{{Name: "http", Addr: "127.0.0.1:0"}},
		Output:    served,
		Probation: time.Minute, // each upgrade ends the previous one's probation
		Drain:     10 * time.Second,
	}
	var accept func(int) bool
	switch mode {
	case "socket":
		opts.Command = []string{fixture}
	case "socket-ctl":
		opts.Command = []string{fixture, "-ctl"}
	case "proxy":
		opts.Proxy, opts.Command = true, []string{fixture}
	case "python":
		py, err := exec.LookPath("python3")
		if err != nil {
			return nil, err
		}
		opts.Proxy, opts.Command = true, []string{py, "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", os.TempDir()}
		accept = func(code int) bool { return code == 200 || code == 501 }
	default:
		return nil, fmt.Errorf("unknown mode")
	}
	s, err := supervisor.New(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := s.WaitFor(wctx, func(st *api.Status) bool { return st.Serving != 0 }); err != nil {
		return nil, fmt.Errorf("first generation: %w", err)
	}
	url := "http://" + s.Addrs()[0] + "/"
	load := loadtest.Start(ctx, loadtest.Options{URL: url, KeepAlive: keepAlive, Fresh: fresh, Accept: accept})
	r := &result{}
	time.Sleep(200 * time.Millisecond) // load warms up
	for i := range n {
		t0 := time.Now()
		res, err := s.Upgrade(ctx, nil)
		if err != nil {
			load.Stop()
			return nil, fmt.Errorf("upgrade %d: %w", i+1, err)
		}
		r.upgrade = append(r.upgrade, time.Since(t0))
		r.upgrades++
		var ready, readyEv, servingEv time.Time
		st := s.Status()
		for _, g := range st.Generations {
			if g.Number == res.Generation {
				ready = g.Ready
			}
		}
		for _, e := range st.Events {
			if e.Generation == res.Generation && e.Kind == "ready" {
				readyEv = e.Time
			}
			if e.Generation == res.Generation && e.Kind == "serving" {
				servingEv = e.Time
			}
		}
		if !readyEv.IsZero() && !servingEv.IsZero() {
			r.decide = append(r.decide, servingEv.Sub(readyEv))
		}
		if mode == "python" {
			time.Sleep(20 * time.Millisecond)
			continue // python's answers carry no generation header
		}
		// Wait until a client has been answered by the new generation.
		gen := strconv.Itoa(res.Generation)
		deadline := time.Now().Add(5 * time.Second)
		for {
			if t, ok := load.FirstSeen(gen); ok {
				r.answer = append(r.answer, max(t.Sub(ready), 0))
				if st, ok := served.get(res.Generation); ok {
					d := st.Sub(ready)
					if d < 0 {
						r.early++
						d = 0
					}
					r.cutover = append(r.cutover, d)
				}
				break
			}
			if time.Now().After(deadline) {
				load.Stop()
				return nil, fmt.Errorf("upgrade %d: no answer from generation %s within 5s", i+1, gen)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
	r.load = load.Stop()
	return r, nil
}

func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	i = min(max(i-1, 0), len(s)-1)
	return fmt.Sprintf("%.3fms", float64(s[i].Nanoseconds())/1e6)
}

func numCPU() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/upgrade:", err)
	os.Exit(1)
}
