package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/loadtest"
)

var fixture string // path of the built testdata/fixture program

func TestMain(m *testing.M) {
	listener.MaybeShim()
	dir, err := os.MkdirTemp("", "graft-sup-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fixture = filepath.Join(dir, "fixture")
	out, err := exec.Command("go", "build", "-o", fixture, "./testdata/fixture").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build fixture: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncWriter serializes child output into the test log.
type syncWriter struct {
	mu sync.Mutex
	t  *testing.T
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type harness struct {
	t    *testing.T
	s    *Supervisor
	url  string
	stop func()
}

// run starts a supervisor on a fresh loopback port and waits until its
// first generation serves.
func run(t *testing.T, opts Options) *harness {
	t.Helper()
	if opts.Listen == nil {
		opts.Listen = []listener.Spec{{Name: "http", Addr: "127.0.0.1:0"}}
	}
	if opts.Output == nil && testing.Verbose() {
		opts.Output = &syncWriter{t: t}
	}
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	if opts.Logger == nil && testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(opts.Output, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	setDefault(&opts.Drain, 3*time.Second)
	setDefault(&opts.StartTimeout, 10*time.Second)
	setDefault(&opts.Probation, 300*time.Millisecond)
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	h := &harness{t: t, s: s, url: "http://" + s.Addrs()[0] + "/"}
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(h.stop)
	h.waitServing(0)
	return h
}

// waitServing waits until a generation other than not serves.
func (h *harness) waitServing(not int) int {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), 20*time.Second)
	defer cancel()
	var n int
	err := h.s.WaitFor(ctx, func(st *api.Status) bool {
		n = st.Serving
		return st.Serving != 0 && st.Serving != not
	})
	if err != nil {
		h.t.Fatalf("wait for a serving generation (not %d): %v; events: %v", not, err, h.s.Status().Events)
	}
	return n
}

func (h *harness) waitGen(n int, state api.GenState) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), 20*time.Second)
	defer cancel()
	err := h.s.WaitFor(ctx, func(st *api.Status) bool {
		for _, g := range st.Generations {
			if g.Number == n {
				return g.State == state
			}
		}
		return false
	})
	if err != nil {
		h.t.Fatalf("wait for generation %d %s: %v; status: %+v", n, state, err, h.s.Status().Generations)
	}
}

func (h *harness) get() (*http.Response, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(h.url)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func (h *harness) mustAnswer() *http.Response {
	h.t.Helper()
	resp, err := h.get()
	if err != nil {
		h.t.Fatalf("service does not answer: %v", err)
	}
	if resp.StatusCode != 200 {
		h.t.Fatalf("service answers %s", resp.Status)
	}
	return resp
}

func (h *harness) load() *loadtest.Load {
	l := loadtest.Start(h.t.Context(), loadtest.Options{URL: h.url, KeepAlive: 8, Fresh: 1})
	h.waitRequests(l, 50)
	return l
}

// waitRequests waits until the load has had n more requests answered.
func (h *harness) waitRequests(l *loadtest.Load, n uint64) {
	h.t.Helper()
	want := l.Requests() + n
	deadline := time.Now().Add(10 * time.Second)
	for l.Requests() < want {
		if time.Now().After(deadline) {
			h.t.Fatalf("load stalled at %d requests", l.Requests())
		}
		time.Sleep(5 * time.Millisecond) // polling a counter: there is no event to await
	}
}

func checkLoad(t *testing.T, r loadtest.Result) {
	t.Helper()
	t.Logf("load: %s", r)
	if r.Requests == 0 || r.Posts == 0 {
		t.Errorf("load sent nothing: %s", r)
	}
	if r.Failures() != 0 {
		t.Errorf("failed requests: %s", r)
	}
}

func fix(args ...string) []string { return append([]string{fixture}, args...) }

var modes = []struct {
	name  string
	proxy bool
	ctl   bool
}{
	{"socket", false, false},
	{"socket-ctl", false, true},
	{"proxy", true, false},
}

func modeArgs(ctl bool, args ...string) []string {
	if ctl {
		args = append([]string{"-ctl"}, args...)
	}
	return fix(args...)
}

func TestUpgradeUnderLoad(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			h := run(t, Options{Proxy: m.proxy, Command: modeArgs(m.ctl, "-version", "1")})
			l := h.load()
			var gens []int
			for i := 2; i <= 4; i++ {
				res, err := h.s.Upgrade(t.Context(), modeArgs(m.ctl, "-version", strconv.Itoa(i)))
				if err != nil {
					t.Fatalf("upgrade %d: %v", i, err)
				}
				gens = append(gens, res.Generation)
				h.waitRequests(l, 100)
			}
			r := l.Stop()
			checkLoad(t, r)
			last := strconv.Itoa(gens[len(gens)-1])
			if _, ok := r.FirstSeen[last]; !ok {
				t.Errorf("no answer from the last generation %s; seen %v", last, r.FirstSeen)
			}
			st := h.s.Status()
			if st.Serving != gens[len(gens)-1] {
				t.Errorf("serving %d, want %d", st.Serving, gens[len(gens)-1])
			}
			if resp := h.mustAnswer(); resp.Header.Get("X-Version") != "4" {
				t.Errorf("answered by version %q, want 4", resp.Header.Get("X-Version"))
			}
		})
	}
}

func TestUpgradeFaults(t *testing.T) {
	faults := []struct {
		name string
		args []string // the new generation's arguments, or nil with cmd
		cmd  []string
		want string // in the upgrade error
		// socketOnly: proxy mode's default readiness (tcp) passes a
		// child that listens without notifying, as it should.
		socketOnly bool
	}{
		{name: "crash before ready", args: []string{"-crash-before-ready"}, want: "exited before ready"},
		{name: "hang on start", args: []string{"-hang"}, want: "no readiness within"},
		{name: "never ready", args: []string{"-never-ready"}, want: "no readiness within", socketOnly: true},
		{name: "binary missing", cmd: []string{"/nonexistent/graft-fixture"}, want: "no such file"},
	}
	for _, m := range modes {
		for _, f := range faults {
			t.Run(m.name+"/"+f.name, func(t *testing.T) {
				if f.socketOnly && m.proxy {
					t.Skip("tcp readiness in proxy mode")
				}
				h := run(t, Options{Proxy: m.proxy, Command: modeArgs(m.ctl, "-version", "1"), StartTimeout: time.Second})
				first := h.s.Status().Serving
				l := h.load()
				cmd := f.cmd
				if cmd == nil {
					cmd = modeArgs(m.ctl, append([]string{"-version", "2"}, f.args...)...)
				}
				_, err := h.s.Upgrade(t.Context(), cmd)
				if err == nil || !strings.Contains(err.Error(), f.want) {
					t.Fatalf("upgrade error = %v, want one containing %q", err, f.want)
				}
				h.waitRequests(l, 100)
				checkLoad(t, l.Stop())
				if st := h.s.Status(); st.Serving != first {
					t.Errorf("serving %d after a failed upgrade, want %d", st.Serving, first)
				}
				if resp := h.mustAnswer(); resp.Header.Get("X-Version") != "1" {
					t.Errorf("answered by version %q, want 1", resp.Header.Get("X-Version"))
				}
			})
		}
	}
}

// A new generation that exits during its probation is rolled back
// automatically: to the parked generation at once (proxy mode, children
// that speak the control protocol), else by starting the previous command.
func TestCrashDuringProbation(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			h := run(t, Options{Proxy: m.proxy, Command: modeArgs(m.ctl, "-version", "1"), Probation: 20 * time.Second})
			first := h.s.Status().Serving
			during := h.load()
			res, err := h.s.Upgrade(t.Context(), modeArgs(m.ctl, "-version", "2", "-crash-after", "200ms"))
			if err != nil {
				t.Fatal(err)
			}
			back := h.waitServing(res.Generation)
			// Requests in flight to a process that dies can fail (POSTs are
			// not retried); logged, not asserted. The load after the
			// rollback must not fail at all.
			t.Logf("load across the crash: %s", during.Stop())
			parkable := m.proxy || m.ctl
			if parkable && back != first {
				t.Errorf("rolled back to %d, want the parked generation %d", back, first)
			}
			if !parkable && back == first {
				t.Errorf("rolled back to the stopped generation %d", back)
			}
			l := h.load()
			h.waitRequests(l, 200)
			checkLoad(t, l.Stop())
			if resp := h.mustAnswer(); resp.Header.Get("X-Version") != "1" {
				t.Errorf("answered by version %q after rollback, want 1", resp.Header.Get("X-Version"))
			}
			if !hasEvent(h.s.Status(), "rollback") {
				t.Errorf("no rollback event: %v", h.s.Status().Events)
			}
		})
	}
}

func hasEvent(st *api.Status, kind string) bool {
	return slices.ContainsFunc(st.Events, func(e api.Event) bool { return e.Kind == kind })
}

// An old generation that ignores SIGTERM is killed at the drain deadline;
// the new one serves throughout.
func TestIgnoresSIGTERM(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			h := run(t, Options{Proxy: m.proxy, Command: modeArgs(m.ctl, "-version", "1", "-ignore-term"), Drain: 500 * time.Millisecond, Probation: 100 * time.Millisecond})
			first := h.s.Status().Serving
			res, err := h.s.Upgrade(t.Context(), modeArgs(m.ctl, "-version", "2"))
			if err != nil {
				t.Fatal(err)
			}
			h.waitGen(first, api.GenExited)
			if !hasEvent(h.s.Status(), "kill") {
				t.Errorf("no kill event: %v", h.s.Status().Events)
			}
			if st := h.s.Status(); st.Serving != res.Generation {
				t.Errorf("serving %d, want %d", st.Serving, res.Generation)
			}
			l := h.load()
			h.waitRequests(l, 100)
			checkLoad(t, l.Stop())
		})
	}
}

func TestRollback(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			h := run(t, Options{Proxy: m.proxy, Command: modeArgs(m.ctl, "-version", "1"), Probation: 20 * time.Second})
			first := h.s.Status().Serving
			if _, err := h.s.Rollback(t.Context()); !errors.Is(err, ErrNoRollback) {
				t.Errorf("rollback with one generation: %v, want ErrNoRollback", err)
			}
			l := h.load()
			res, err := h.s.Upgrade(t.Context(), modeArgs(m.ctl, "-version", "2"))
			if err != nil {
				t.Fatal(err)
			}
			h.waitRequests(l, 100)
			rb, err := h.s.Rollback(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if rb.Previous != res.Generation {
				t.Errorf("rollback previous %d, want %d", rb.Previous, res.Generation)
			}
			if (m.proxy || m.ctl) && rb.Generation != first {
				t.Errorf("rolled back to %d, want the parked %d", rb.Generation, first)
			}
			h.waitRequests(l, 100)
			checkLoad(t, l.Stop())
			// A child that cannot be parked got the stop signal and may
			// accept until it has handled it.
			h.waitGen(res.Generation, api.GenExited)
			if resp := h.mustAnswer(); resp.Header.Get("X-Version") != "1" {
				t.Errorf("answered by version %q after rollback, want 1", resp.Header.Get("X-Version"))
			}
		})
	}
}
