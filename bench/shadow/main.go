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
// internal/shadow's Service as graft run wires it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	flag.Parse()
	if err := run(*dur, *rounds, *conns, *threads); err != nil {
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

var modes = []string{"off", "on", "on, sample 0.1", "stalled candidate"}

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
}

func run(dur time.Duration, rounds, conns, threads int) error {
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
		StartLane: func(ctx context.Context, role string, cmd []string) (shadow.Lane, error) {
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
		SetObserve: func(f func(*proxy.Request, *proxy.Response)) { p.SetHooks(proxy.Hooks{Observe: f}) },
	}, shadow.ServiceOptions{Controller: shadow.Options{Timeout: time.Hour}})
	defer svc.Close()

	var results []result
	for range rounds {
		for _, mode := range modes {
			if mode != "off" {
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
			r, err := measure(url, mode, dur, conns, threads)
			if err != nil {
				return err
			}
			if mode != "off" {
				rep, err := svc.Stop(context.Background())
				if err != nil {
					return err
				}
				r.mirrored, r.compared, r.dropped = rep.Mirrored, rep.Compared, rep.Dropped
			}
			results = append(results, r)
			fmt.Fprintf(os.Stderr, "%s: %.0f req/s p50 %v p99 %v\n", mode, r.rps, r.p50, r.p99)
		}
	}
	print(results, dur, rounds, conns, threads)
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
	out, err := exec.Command("wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", dur.String(), "--latency", url).CombinedOutput()
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

func print(rs []result, dur time.Duration, rounds, conns, threads int) {
	fmt.Printf("Command: go run ./bench/shadow -d %s -rounds %d -c %d -t %d\n", dur, rounds, conns, threads)
	fmt.Printf("Machine: %d cores (%s/%s), %s, %s\n\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Println("| mode | req/s | p50 | p99 | mirrored | compared | dropped | max heap in use | max goroutines | wrk errors |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		fmt.Printf("| %s | %.0f | %v | %v | %d | %d | %d | %.1f MiB | %d | %s |\n", r.mode, r.rps, r.p50, r.p99, r.mirrored, r.compared, r.dropped, float64(r.maxHeap)/(1<<20), r.maxGoroutines, r.errors)
	}
	// Side by side: each round's on and stalled against its own off.
	fmt.Println()
	fmt.Println("| round | mode | throughput / off | p50 − off | p99 − off |")
	fmt.Println("|---|---|---|---|---|")
	for i := 0; i+len(modes) <= len(rs); i += len(modes) {
		off := rs[i]
		for _, r := range rs[i+1 : i+len(modes)] {
			fmt.Printf("| %d | %s | %.2f | %v | %v |\n", i/len(modes)+1, r.mode, r.rps/off.rps, r.p50-off.p50, r.p99-off.p99)
		}
	}
}
