// Command procs measures shadowing with real processes: the backend program
// (bench/shadow/backend) runs under the real graft binary (graft run
// --proxy), the shadow is started with the real graft shadow -- CMD (the
// candidate is the same program, so nothing diverges), and wrk measures the
// primary path with shadowing off and on, interleaved round after round. A
// paced run below saturation shows that every request is compared when the
// machine has room for the lanes. It prints Markdown tables and its
// command line.
//
//	go run ./bench/shadow/procs -d 5s -rounds 3
//
// graft and the backend are built from this tree into a temporary
// directory (-graft uses a prebuilt graft instead).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/client"
)

type config struct {
	dur                    time.Duration
	rounds, conns, threads int
	pacedShares            []float64
	graft                  string
	modes                  []string
}

// A mode is how the shadow runs during one measurement: its graft shadow
// flags, its candidate's extra flags, and whether the load is paced.
type mode struct {
	name      string
	shadow    bool
	flags     []string // graft shadow flags
	candFlags []string // appended to the candidate's command
	paced     float64  // > 0: paced load at this share of the round's off throughput, instead of wrk
}

var allModes = []mode{
	{name: "off"},
	{name: "on", shadow: true},
	{name: "on, sample 0.1", shadow: true, flags: []string{"--sample", "0.1"}},
	{name: "on, lanes at normal priority", shadow: true, flags: []string{"--lane-priority", "normal"}},
	{name: "stalled candidate", shadow: true, candFlags: []string{"-stall"}},
	// "paced S, off" and "paced S, on" for each share S of -paced-shares.
}

func main() {
	var c config
	flag.DurationVar(&c.dur, "d", 5*time.Second, "duration of each measurement")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds over all modes")
	flag.IntVar(&c.conns, "c", 32, "wrk connections")
	flag.IntVar(&c.threads, "t", 2, "wrk threads")
	shares := flag.String("paced-shares", "0.5,0.25", "rates of the paced runs, as shares of the round's off throughput (comma-separated)")
	flag.StringVar(&c.graft, "graft", "", "prebuilt graft `binary` (default: build ./cmd/graft)")
	var names []string
	for _, m := range allModes {
		names = append(names, m.name)
	}
	only := flag.String("modes", "", "semicolon-separated subset of modes (default all; off is always run): "+strings.Join(names, "; "))
	flag.Parse()
	for _, f := range strings.Split(*shares, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || v > 1 {
			fmt.Fprintf(os.Stderr, "bench shadow procs: -paced-shares: %q is not a share in (0, 1]\n", f)
			os.Exit(2)
		}
		c.pacedShares = append(c.pacedShares, v)
		allModes = append(allModes,
			mode{name: fmt.Sprintf("paced %g, off", v), paced: v},
			mode{name: fmt.Sprintf("paced %g, on", v), shadow: true, paced: v})
	}
	for _, m := range allModes {
		if *only == "" || m.name == "off" || slices.Contains(strings.Split(*only, ";"), m.name) {
			c.modes = append(c.modes, m.name)
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench shadow procs:", err)
		os.Exit(1)
	}
}

type result struct {
	mode     string
	round    int
	rps      float64
	requests float64
	p50, p99 time.Duration
	errors   string
	cpuAll   time.Duration // graft, the primary and the lanes: CPU per request
	cpuGraft time.Duration // graft's own process: CPU per request
	cpuWork  time.Duration // the shadow's worker process: CPU per request
	csw      float64       // graft's context switches per request (its threads blocking or preempted)
	waitG    time.Duration // graft's threads' time runnable but not running, per request
	waitP    time.Duration // the primary's, per request
	rss      int64         // graft's resident memory after the load, KiB
	rep      *api.Report   // the shadow run's report, nil when off
}

type bench struct {
	c       config
	dir     string
	graft   string
	backend string
	admin   string
	url     string
	pid     int // graft run's
	primary int // the serving generation's
	ac      *client.Client
}

func run(ctx context.Context, c config) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("needs wrk on PATH")
	}
	dir, err := os.MkdirTemp("", "graft-bench-shadow-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{c: c, dir: dir, graft: c.graft, backend: filepath.Join(dir, "backend"), admin: filepath.Join(dir, "admin.sock")}
	if err := build(b.backend, "./bench/shadow/backend"); err != nil {
		return err
	}
	if b.graft == "" {
		b.graft = filepath.Join(dir, "graft")
		if err := build(b.graft, "./cmd/graft"); err != nil {
			return err
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	b.url = fmt.Sprintf("http://127.0.0.1:%d/users/42", port)
	logf, err := os.Create(filepath.Join(dir, "graft.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	sup := exec.Command(b.graft, "run", "--proxy", "--admin", b.admin, "--seal-file", filepath.Join(dir, "seal.json"),
		"--listen", fmt.Sprintf("http=127.0.0.1:%d", port), "--", b.backend, "-port", "{port}")
	sup.Stdout, sup.Stderr = logf, logf
	sup.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sup.Start(); err != nil {
		return fmt.Errorf("start graft run: %w", err)
	}
	b.pid = sup.Process.Pid
	defer func() {
		sup.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { sup.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-sup.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	b.ac = client.New(b.admin)
	if err := waitServing(ctx, b.url); err != nil {
		log, _ := os.ReadFile(logf.Name())
		return fmt.Errorf("graft run did not serve: %w\n%s", err, log)
	}
	b.primary = b.child()
	var rs []result
	for round := range c.rounds {
		offRPS := 0.0
		for _, m := range allModes {
			if !slices.Contains(c.modes, m.name) {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rate := int(offRPS * m.paced)
			r, err := b.measure(ctx, m, rate)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, m.name, err)
			}
			r.round = round + 1
			if m.name == "off" {
				offRPS = r.rps
			}
			fmt.Fprintf(os.Stderr, "round %d %-30s %8.0f req/s  p50 %-9v p99 %-9v CPU/req %v graft %v worker %v, run-queue wait/req graft %v primary %v%s\n", r.round, m.name, r.rps,
				r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.cpuAll.Round(100*time.Nanosecond), r.cpuGraft.Round(100*time.Nanosecond), r.cpuWork.Round(100*time.Nanosecond),
				r.waitG.Round(100*time.Nanosecond), r.waitP.Round(100*time.Nanosecond), shadowLine(r.rep))
			rs = append(rs, r)
		}
	}
	printTables(rs, c)
	return nil
}

func shadowLine(r *api.Report) string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf("  observed %d mirrored %d compared %d dropped %d verdict %s", r.Requests, r.Mirrored, r.Compared, r.Dropped, r.Verdict)
}

func build(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitServing(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", url, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond): // polling a server that is starting; no event to await
		}
	}
}

// measure runs one mode: start the shadow (if on), load, stop the shadow.
func (b *bench) measure(ctx context.Context, m mode, rate int) (result, error) {
	r := result{mode: m.name}
	if m.shadow {
		args := append([]string{"shadow", "--admin", b.admin, "--detach", "--requests", "1000000000"}, m.flags...)
		args = append(append(args, "--", b.backend, "-port", "{port}"), m.candFlags...)
		if out, err := exec.CommandContext(ctx, b.graft, args...).CombinedOutput(); err != nil {
			return r, fmt.Errorf("graft shadow: %w\n%s", err, out)
		}
		if err := b.waitRunning(ctx); err != nil {
			return r, err
		}
	}
	all0, graft0, work0 := b.cpu()
	csw0 := b.switches()
	wg0, wp0 := runDelay(b.pid), runDelay(b.primary)
	var err error
	if m.paced > 0 {
		err = paced(ctx, b.url, rate, b.c.dur, &r)
	} else {
		err = wrk(ctx, b.url, b.c, &r)
	}
	all1, graft1, work1 := b.cpu()
	csw1 := b.switches()
	wg1, wp1 := runDelay(b.pid), runDelay(b.primary)
	r.rss = b.rss()
	if r.requests > 0 {
		r.cpuAll = time.Duration(float64(all1-all0) / r.requests)
		r.cpuGraft = time.Duration(float64(graft1-graft0) / r.requests)
		r.cpuWork = time.Duration(float64(work1-work0) / r.requests)
		r.csw = float64(csw1-csw0) / r.requests
		r.waitG = time.Duration(float64(wg1-wg0) / r.requests)
		r.waitP = time.Duration(float64(wp1-wp0) / r.requests)
	}
	if m.shadow {
		out, serr := exec.Command(b.graft, "shadow", "stop", "--admin", b.admin, "--json").Output()
		var rep api.Report
		if serr == nil {
			serr = json.Unmarshal(out, &rep)
		}
		if serr != nil && err == nil {
			err = fmt.Errorf("graft shadow stop: %w\n%s", serr, out)
		}
		r.rep = &rep
	}
	return r, err
}

func (b *bench) waitRunning(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		rep, err := b.ac.Report(ctx)
		if err != nil {
			return fmt.Errorf("graft report: %w", err)
		}
		switch rep.State {
		case api.ShadowRunning:
			return nil
		case api.ShadowDone:
			return fmt.Errorf("shadow run ended before the load: %s", rep.Reason)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("shadow lanes did not start: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond): // polling the admin API's state
		}
	}
}

// cpu is the CPU time used so far by graft run and its children (the
// primary, the lanes and the shadow's worker process), by graft alone, and
// by the worker (graft's child running graft shadow-worker). Lanes and
// worker start before and stop after a measurement, so no process's time
// is lost in between.
func (b *bench) cpu() (all, graft, worker time.Duration) {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent := map[int]int{}
	ticks := map[int]int64{}
	for _, p := range stats {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/stat"))
		f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
		st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
		parent[pid], ticks[pid] = ppid, ut+st
	}
	const tick = 10 * time.Millisecond // USER_HZ 100
	for pid, t := range ticks {
		for q := pid; q > 1; q = parent[q] {
			if q == b.pid {
				all += time.Duration(t) * tick
				break
			}
		}
		if parent[pid] == b.pid {
			if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmd), "\x00shadow-worker") {
				worker += time.Duration(t) * tick
			}
		}
	}
	return all, time.Duration(ticks[b.pid]) * tick, worker
}

// switches is the context switches of graft run's threads so far
// (voluntary and not), a count of its wakeups that CPU time on a shared
// machine blurs.
func (b *bench) switches() int64 {
	var n int64
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", b.pid))
	for _, p := range tasks {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}

// child is graft's one child before any shadow run: the primary.
func (b *bench) child() int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if ppid, _ := strconv.Atoi(f[1]); ppid == b.pid {
			pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/stat"))
			return pid
		}
	}
	return 0
}

// runDelay is the time pid's threads have spent runnable but waiting for
// a CPU (schedstat's run_delay), summed over its live threads: the
// scheduler latency it suffered.
func runDelay(pid int) time.Duration {
	var d int64
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, p := range tasks {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(data)); len(f) >= 2 {
			x, _ := strconv.ParseInt(f[1], 10, 64)
			d += x
		}
	}
	return time.Duration(d)
}

// rss is graft run's resident set in KiB (VmRSS), 0 if unknown.
func (b *bench) rss() int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func wrk(ctx context.Context, url string, c config, r *result) error {
	out, err := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(c.threads), "-c", strconv.Itoa(c.conns), "-d", c.dur.String(), "--latency", url).CombinedOutput()
	if err != nil {
		return fmt.Errorf("wrk: %w\n%s", err, out)
	}
	s := string(out)
	if m := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindStringSubmatch(s); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(s); m != nil {
		r.requests, _ = strconv.ParseFloat(m[1], 64)
	}
	r.p50, r.p99 = percentile(s, "50%"), percentile(s, "99%")
	if m := regexp.MustCompile(`(Socket errors:.*|Non-2xx or 3xx responses: \d+)`).FindAllString(s, -1); m != nil {
		r.errors = strings.Join(m, "; ")
	}
	return nil
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

// paced sends GETs at a fixed rate for dur, open loop: request k is due at
// start + k/rate, and its latency counts from when it was due, so a server
// that falls behind is charged for the wait (no coordinated omission).
// Workers each keep one connection.
func paced(ctx context.Context, url string, rate int, dur time.Duration, r *result) error {
	if rate <= 0 {
		return errors.New("paced run: no rate (run off first)")
	}
	const workers = 32
	n := int(float64(rate) * dur.Seconds())
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	lat := make([]time.Duration, n)
	var failed int
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := w; k < n && ctx.Err() == nil; k += workers {
				due := start.Add(time.Duration(float64(k) / float64(rate) * float64(time.Second)))
				time.Sleep(time.Until(due)) // the schedule itself, not synchronization
				resp, err := hc.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					mu.Lock()
					failed++
					mu.Unlock()
				}
				lat[k] = time.Since(due)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	r.requests, r.rps = float64(n), float64(n)/elapsed.Seconds()
	r.p50, r.p99 = lat[n/2], lat[n*99/100]
	if failed > 0 {
		r.errors = fmt.Sprintf("%d failed", failed)
	}
	return ctx.Err()
}

func median[T float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		var zero T
		return zero
	}
	return s[len(s)/2]
}

func printTables(rs []result, c config) {
	var shares []string
	for _, v := range c.pacedShares {
		shares = append(shares, strconv.FormatFloat(v, 'g', -1, 64))
	}
	cmd := fmt.Sprintf("go run ./bench/shadow/procs -d %s -rounds %d -c %d -t %d -paced-shares %s", c.dur, c.rounds, c.conns, c.threads, strings.Join(shares, ","))
	if len(c.modes) < len(allModes) {
		cmd += fmt.Sprintf(" -modes %q", strings.Join(c.modes, ";"))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("Command: %s\n", cmd)
	fmt.Printf("Machine: %d cores (%s/%s), %s, %s, load average at the end %s\n\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		time.Now().UTC().Format("2006-01-02 15:04 MST"), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Println("Every measurement, in the order run (wrk -t", c.threads, "-c", c.conns, "for", c.dur, "; paced: open-loop GETs at the given share of the round's off throughput):")
	fmt.Println()
	fmt.Println("| round | mode | req/s | p50 | p99 | CPU per request (all) | CPU per request (graft) | CPU per request (worker) | graft switches per request | graft run-queue wait per request | primary run-queue wait per request | graft RSS | observed | mirrored | compared | dropped | compared / observed | verdict | errors |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		sh := "| – | – | – | – | – | – "
		if r.rep != nil {
			sh = fmt.Sprintf("| %d | %d | %d | %d | %.1f%% | %s ", r.rep.Requests, r.rep.Mirrored, r.rep.Compared, r.rep.Dropped, share(r.rep), r.rep.Verdict)
		}
		fmt.Printf("| %d | %s | %.0f | %v | %v | %v | %v | %v | %.2f | %v | %v | %.1f MiB %s| %s |\n", r.round, r.mode, r.rps, r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond),
			r.cpuAll.Round(100*time.Nanosecond), r.cpuGraft.Round(100*time.Nanosecond), r.cpuWork.Round(100*time.Nanosecond), r.csw,
			r.waitG.Round(100*time.Nanosecond), r.waitP.Round(100*time.Nanosecond), float64(r.rss)/1024, sh, r.errors)
	}
	fmt.Println()
	fmt.Println("Against off in the same round (a paced run: against the paced run at the same rate, off), medians over the rounds; the rounds' ratios in parentheses:")
	fmt.Println()
	fmt.Println("| mode | throughput / off | p50 − off | p99 − off | CPU per request / off | graft CPU per request / off | graft CPU per compared request − off | compared / observed |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	type key struct {
		round int
		mode  string
	}
	byKey := map[key]result{}
	for _, r := range rs {
		byKey[key{r.round, r.mode}] = r
	}
	d := func(x float64) time.Duration { return time.Duration(x).Round(10 * time.Microsecond) }
	for _, m := range c.modes {
		base := "off"
		if strings.HasPrefix(m, "paced") {
			base = strings.TrimSuffix(strings.TrimSuffix(m, ", on"), ", off") + ", off"
		}
		if m == base {
			continue
		}
		var thr, p50, p99, cpu, gcpu, gcmp, cmp []float64
		var each []string
		for _, r := range rs {
			b, ok := byKey[key{r.round, base}]
			if r.mode != m || !ok || b.rps == 0 || b.cpuAll == 0 {
				continue
			}
			thr = append(thr, r.rps/b.rps)
			each = append(each, fmt.Sprintf("%.2f", r.rps/b.rps))
			p50 = append(p50, float64(r.p50-b.p50))
			p99 = append(p99, float64(r.p99-b.p99))
			cpu = append(cpu, float64(r.cpuAll)/float64(b.cpuAll))
			gcpu = append(gcpu, float64(r.cpuGraft)/float64(b.cpuGraft))
			// graft's extra CPU over the round's off, per compared request:
			// what one comparison costs graft's own process.
			if c := share(r.rep) / 100; c > 0 {
				gcmp = append(gcmp, float64(r.cpuGraft-b.cpuGraft)/c)
			}
			cmp = append(cmp, share(r.rep))
		}
		if len(thr) == 0 {
			continue
		}
		perCmp := "–"
		if len(gcmp) > 0 {
			perCmp = time.Duration(median(gcmp)).Round(100 * time.Nanosecond).String()
		}
		fmt.Printf("| %s | %.2f (%s) | %v | %v | %.2f | %.2f | %s | %.1f%% |\n", m, median(thr), strings.Join(each, ", "), d(median(p50)), d(median(p99)),
			median(cpu), median(gcpu), perCmp, median(cmp))
	}
}

func share(r *api.Report) float64 {
	if r == nil || r.Requests == 0 {
		return 0
	}
	return 100 * float64(r.Compared) / float64(r.Requests)
}
