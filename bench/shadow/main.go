// Command shadow measures what shadowing costs the primary path: wrk
// against graft's proxy in front of a JSON backend, with shadowing off, on
// (candidate and secondary answering), and on with a candidate that never
// answers, alternating so that the machine's other load spreads over all
// modes. It prints a Markdown table and the command line that produced it.
//
//	go run ./bench/shadow -d 10s -rounds 2
//
// Everything runs in this process except wrk: the backend and the lanes are
// net/http servers on 127.0.0.1, the proxy is internal/proxy, the shadow is
// internal/shadow's Service as graft run wires it, except that its worker
// runs on goroutines of this process (no worker command), at normal
// priority: useful for profiling, not for the figure, which
// bench/shadow/procs measures with the real processes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/proxy"
	"github.com/graftdev/graft/internal/shadow"
)

func main() {
	dur := flag.Duration("d", 10*time.Second, "duration of each wrk run")
	rounds := flag.Int("rounds", 2, "rounds of off / on / stalled")
	conns := flag.Int("c", 32, "wrk connections")
	threads := flag.Int("t", 2, "wrk threads")
	paced := flag.Int("paced", 2000, "requests of the paced latency run, per mode and round")
	rate := flag.Int("rate", 500, "requests per second of the paced latency run")
	only := flag.String("modes", "", "semicolon-separated subset of modes to run (default all): "+strings.Join(modes, "; "))
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to `file`")
	flag.Parse()
	if *only != "" {
		modes = strings.Split(*only, ";")
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	cfg = config{dur: *dur, rounds: *rounds, conns: *conns, threads: *threads, paced: *paced, rate: *rate}
	if err := run(cfg); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench shadow:", err)
		os.Exit(1)
	}
}

// backend answers like a small JSON API with nondeterministic fields.
func backend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": strings.TrimPrefix(r.URL.Path, "/users/"), "name": "ada", "plan": "free",
			"at": time.Now().UnixNano(), "req": rand.Uint64(),
		})
	})
}

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}

type lane struct {
	addr string
	stop func()
	done chan struct{}
	once sync.Once
}

func (l *lane) Addr() string          { return l.addr }
func (l *lane) Done() <-chan struct{} { return l.done }
func (l *lane) Stop(context.Context) error {
	l.once.Do(func() { l.stop(); close(l.done) })
	return nil
}

// modes: "no-op hook" sets a proxy Observe hook that does nothing, which
// separates what the proxy pays to copy each exchange for any hook from
// what the shadow adds.
var modes = []string{"off", "no-op hook", "on", "on, sample 0.1", "stalled candidate"}

type config struct {
	dur                    time.Duration
	rounds, conns, threads int
	paced, rate            int
}

var cfg config

type result struct {
	mode          string
	rps           float64
	p50, p99      time.Duration
	errors        string
	mirrored      uint64
	compared      uint64
	dropped       uint64
	maxHeap       uint64
	maxGoroutines int
	cpuPerReq     time.Duration // this process's CPU (proxy, backend, lanes, shadow) per proxied request under wrk
	served        uint64
	pacedP50      time.Duration // one client, paced: the primary path's latency when the machine is not saturated by this load
	pacedP99      time.Duration
}

func run(c config) error {
	primary, stopPrimary, err := serve(backend())
	if err != nil {
		return err
	}
	defer stopPrimary()
	p := proxy.New(proxy.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go p.Serve(ln)
	defer p.Shutdown(context.Background())
	p.SetPrimary(proxy.NewBackend(1, primary))
	url := "http://" + ln.Addr().String() + "/users/42"

	// The stalled candidate holds every request until the bench ends.
	release := make(chan struct{})
	defer close(release)
	stalled := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	var candidate atomic.Value // http.Handler of the next candidate lane
	svc := shadow.NewService(shadow.Host{
		// In-process lanes: the priority cannot apply (goroutines, not processes).
		StartLane: func(ctx context.Context, role string, cmd []string, _ string) (shadow.Lane, error) {
			h := backend()
			if role == "candidate" {
				h = candidate.Load().(http.Handler)
			}
			addr, stop, err := serve(h)
			if err != nil {
				return nil, err
			}
			return &lane{addr: addr, stop: stop, done: make(chan struct{})}, nil
		},
		ServingCmd: func() ([]string, error) { return []string{"backend"}, nil },
		SetHooks:   p.SetHooks,
	}, shadow.ServiceOptions{Controller: shadow.Options{Timeout: time.Hour}})
	defer svc.Close()

	var results []result
	for range c.rounds {
		for _, mode := range modes {
			if mode == "no-op hook" {
				p.SetHooks(proxy.Hooks{Observe: func(*proxy.Request, *proxy.Response) {}, ObserveResponse: true})
			}
			if mode != "off" && mode != "no-op hook" {
				h := backend()
				if mode == "stalled candidate" {
					h = stalled
				}
				candidate.Store(h)
				sample := 1.0
				if mode == "on, sample 0.1" {
					sample = 0.1
				}
				if _, err := svc.Start(api.ShadowRequest{Command: []string{mode}, Requests: 1 << 30, Sample: sample}); err != nil {
					return err
				}
				for svc.Report().State == api.ShadowStarting {
					time.Sleep(time.Millisecond)
				}
			}
			before := p.Stats().Requests
			r, err := measure(url, mode, c.dur, c.conns, c.threads)
			if err != nil {
				return err
			}
			r.served = p.Stats().Requests - before
			if r.served > 0 {
				r.cpuPerReq = r.cpuPerReq / time.Duration(r.served)
			}
			if r.pacedP50, r.pacedP99, err = pacedRun(url, c.paced, c.rate); err != nil {
				return err
			}
			if mode == "no-op hook" {
				p.SetHooks(proxy.Hooks{})
			}
			if mode != "off" && mode != "no-op hook" {
				rep, err := svc.Stop(context.Background())
				if err != nil {
					return err
				}
				r.mirrored, r.compared, r.dropped = rep.Mirrored, rep.Compared, rep.Dropped
			}
			results = append(results, r)
			fmt.Fprintf(os.Stderr, "%s: %.0f req/s p50 %v p99 %v cpu/req %v paced p50 %v p99 %v\n", mode, r.rps, r.p50, r.p99, r.cpuPerReq, r.pacedP50, r.pacedP99)
		}
	}
	print(results, c)
	return nil
}

// measure runs wrk once and samples this process's heap and goroutines.
func measure(url, mode string, dur time.Duration, conns, threads int) (result, error) {
	r := result{mode: mode}
	runtime.GC()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			r.maxHeap = max(r.maxHeap, ms.HeapInuse)
			r.maxGoroutines = max(r.maxGoroutines, runtime.NumGoroutine())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	cpu0 := cpuTime()
	out, err := exec.Command("wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", dur.String(), "--latency", url).CombinedOutput()
	r.cpuPerReq = cpuTime() - cpu0 // divided by the requests served by the caller
	close(stop)
	wg.Wait()
	if err != nil {
		return r, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	s := string(out)
	if m := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindStringSubmatch(s); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	r.p50 = percentile(s, "50%")
	r.p99 = percentile(s, "99%")
	if m := regexp.MustCompile(`(Socket errors:.*|Non-2xx or 3xx responses: \d+)`).FindAllString(s, -1); m != nil {
		r.errors = strings.Join(m, "; ")
	}
	return r, nil
}

func percentile(s, p string) time.Duration {
	m := regexp.MustCompile(regexp.QuoteMeta(p) + `\s+([\d.]+)(us|ms|s)`).FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[2]]
	return time.Duration(v * float64(unit))
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pacedRun sends n requests from one keep-alive client at a fixed rate and
// returns the latency percentiles.
func pacedRun(url string, n, rate int) (p50, p99 time.Duration, err error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	lat := make([]time.Duration, 0, n)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for range n {
		<-tick.C
		t0 := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			return 0, 0, fmt.Errorf("paced run: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], nil
}

func median[T int64 | float64 | time.Duration | uint64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func print(rs []result, c config) {
	fmt.Printf("Command: go run ./bench/shadow -d %s -rounds %d -c %d -t %d -paced %d -rate %d\n", c.dur, c.rounds, c.conns, c.threads, c.paced, c.rate)
	fmt.Printf("Machine: %d cores (%s/%s), %s, %s\n\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Println("Every run, in the order run (wrk: saturating load; paced: one client at a fixed rate):")
	fmt.Println()
	fmt.Println("| mode | wrk req/s | wrk p50 | wrk p99 | CPU per request | paced p50 | paced p99 | mirrored | compared | dropped | max heap in use | max goroutines | wrk errors |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		fmt.Printf("| %s | %.0f | %v | %v | %v | %v | %v | %d | %d | %d | %.1f MiB | %d | %s |\n", r.mode, r.rps, r.p50, r.p99, r.cpuPerReq.Round(100*time.Nanosecond), r.pacedP50.Round(time.Microsecond), r.pacedP99.Round(time.Microsecond), r.mirrored, r.compared, r.dropped, float64(r.maxHeap)/(1<<20), r.maxGoroutines, r.errors)
	}
	fmt.Println()
	fmt.Println("Medians over the rounds, against shadowing off:")
	fmt.Println()
	fmt.Println("| mode | wrk throughput / off | CPU per request / off | paced p50 − off | paced p99 − off | wrk p50 − off | wrk p99 − off |")
	fmt.Println("|---|---|---|---|---|---|---|")
	by := map[string][]result{}
	for _, r := range rs {
		by[r.mode] = append(by[r.mode], r)
	}
	get := func(mode string, f func(result) float64) float64 {
		var v []float64
		for _, r := range by[mode] {
			v = append(v, f(r))
		}
		return median(v)
	}
	rps := func(r result) float64 { return r.rps }
	cpu := func(r result) float64 { return float64(r.cpuPerReq) }
	pp50 := func(r result) float64 { return float64(r.pacedP50) }
	pp99 := func(r result) float64 { return float64(r.pacedP99) }
	wp50 := func(r result) float64 { return float64(r.p50) }
	wp99 := func(r result) float64 { return float64(r.p99) }
	d := func(x float64) time.Duration { return time.Duration(x).Round(time.Microsecond) }
	for _, m := range modes[1:] {
		fmt.Printf("| %s | %.2f | %.2f | %v | %v | %v | %v |\n", m,
			get(m, rps)/get("off", rps), get(m, cpu)/get("off", cpu),
			d(get(m, pp50)-get("off", pp50)), d(get(m, pp99)-get("off", pp99)),
			d(get(m, wp50)-get("off", wp50)), d(get(m, wp99)-get("off", wp99)))
	}
}
