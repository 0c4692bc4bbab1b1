package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/client"
	"github.com/graftdev/graft/internal/cli"
	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/shadow"
	"github.com/graftdev/graft/internal/shadow/worker"
	"github.com/graftdev/graft/internal/supervisor"
)

// TestMain lets the test binary be its own fixture service: run as
// "fixture-server -port N [-bug B]" it serves a small JSON API; and graft's
// shadow worker process, as shadow.Attach starts it.
func TestMain(m *testing.M) {
	listener.MaybeShim()
	if os.Getenv(worker.Env) != "" { // shadow.Attach's worker process
		conn, err := worker.Conn(os.Getenv)
		if err == nil {
			err = worker.Serve(context.Background(), conn)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == "fixture-server" {
		fixtureServer(os.Args[2:])
		return
	}
	os.Exit(m.Run())
}

func fixtureServer(args []string) {
	fs := flag.NewFlagSet("fixture-server", flag.ExitOnError)
	port := fs.String("port", "", "port")
	bug := fs.String("bug", "", "regression to seed: value")
	fs.Parse(args)
	started := time.Now().UnixNano()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/users/")
		plan := "free"
		if *bug == "value" {
			plan = "pro"
		}
		// Keys in random order (encoding/json would sort them).
		fields := []string{
			fmt.Sprintf(`"id":%q`, id), fmt.Sprintf(`"plan":%q`, plan),
			fmt.Sprintf(`"served_at":%q`, time.Now().Format(time.RFC3339Nano)),
			fmt.Sprintf(`"request":"%016x"`, rand.Uint64()),
			fmt.Sprintf(`"instance":%d`, started),
			`"tags":{"a":true,"b":false}`,
		}
		rand.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", fmt.Sprint(rand.Uint64()))
		fmt.Fprintf(w, "{%s}\n", strings.Join(fields, ","))
	})
	if err := http.ListenAndServe("127.0.0.1:"+*port, h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// sup runs a real supervisor in proxy mode with shadowing attached, and
// keeps traffic flowing through its proxy until the test ends.
type sup struct {
	s    *supervisor.Supervisor
	sock string
	url  string
}

func startSupervisor(t *testing.T) *sup {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "admin.sock")
	s, err := supervisor.New(supervisor.Options{
		Proxy: true, Command: []string{exe, "fixture-server", "-port", "{port}"},
		Listen:      []listener.Spec{{Name: "http", Addr: "127.0.0.1:0"}},
		AdminSocket: sock, Output: io.Discard, Probation: 100 * time.Millisecond, Drain: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := shadow.Attach(s, shadow.AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		svc.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("supervisor Run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer wcancel()
	if err := s.WaitFor(wctx, func(st *api.Status) bool { return st.Serving != 0 }); err != nil {
		t.Fatalf("no generation serves: %v", err)
	}
	h := &sup{s: s, sock: sock, url: "http://" + s.Addrs()[0]}
	// Traffic: one client, sequential, until the test ends.
	tctx, tcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		c := &http.Client{}
		for i := 0; tctx.Err() == nil; i++ {
			req, _ := http.NewRequestWithContext(tctx, "GET", fmt.Sprintf("%s/users/%d", h.url, i%97), nil)
			if resp, err := c.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if i%20 == 0 {
				req, _ := http.NewRequestWithContext(tctx, "POST", h.url+"/users", strings.NewReader(`{"x":1}`))
				if resp, err := c.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	})
	t.Cleanup(func() { tcancel(); wg.Wait() })
	return h
}

func graft(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	err := cli.Run(ctx, args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestGraftShadowWithSupervisor(t *testing.T) {
	h := startSupervisor(t)
	exe, _ := os.Executable()
	gen0 := h.s.Status().Serving

	// A candidate with a changed value fails, and --promote stops it.
	// Lanes and worker at normal priority here and below: at idle
	// priority, on a machine kept busy by other tests (CI runs every
	// package at once), they could wait minutes for a CPU.
	// TestLanePriority and TestWorkerPriority check the idle default.
	out, stderr, err := graft(t, "shadow", "--admin", h.sock, "--requests", "400", "--promote", "--lane-priority", "normal", "--",
		exe, "fixture-server", "-port", "{port}", "-bug", "value")
	t.Logf("graft shadow (regression):\n%s", out)
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != 1 {
		t.Fatalf("graft shadow on a regression: err %v, want exit status 1\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	if !strings.Contains(out, "verdict: fail") || !strings.Contains(out, "candidate stopped") {
		t.Errorf("report lacks the verdict or the promote outcome:\n%s", out)
	}
	js, _, err := graft(t, "report", "--admin", h.sock, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep api.Report
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("report --json: %v\n%s", err, js)
	}
	var divergent []string
	for _, r := range rep.Routes {
		for _, f := range r.Fields {
			if f.Divergent {
				divergent = append(divergent, r.Route+" "+f.Path)
			}
		}
	}
	if rep.Version != 1 || rep.Verdict != "fail" || len(divergent) != 1 || divergent[0] != "GET /users/{id} body.plan" {
		t.Errorf("report: version %d verdict %s divergent %q, want 1, fail, [GET /users/{id} body.plan]", rep.Version, rep.Verdict, divergent)
	}
	for _, r := range rep.Routes {
		if strings.HasPrefix(r.Route, "POST") {
			t.Errorf("POST mirrored by default: %+v", r)
		}
	}
	if h.s.Status().Serving != gen0 {
		t.Errorf("serving generation changed after a failed shadow")
	}
	for _, g := range h.s.Status().Generations {
		if g.Role != "" && g.State != api.GenExited {
			t.Errorf("lane %d (%s) still %s after the run", g.Number, g.Role, g.State)
		}
	}

	// The same version as candidate passes (noise: timestamps, ids, an
	// instance start time, key order, a random header), and --promote
	// upgrades to it.
	out, stderr, err = graft(t, "shadow", "--admin", h.sock, "--target-rate", "0.02", "--promote", "--lane-priority", "normal", "--",
		exe, "fixture-server", "-port", "{port}")
	if err != nil {
		t.Fatalf("graft shadow old vs old: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	t.Logf("graft shadow (old vs old):\n%s", out)
	if !strings.Contains(out, "verdict: pass") || !strings.Contains(out, "promote: upgraded to generation") {
		t.Errorf("old vs old report:\n%s", out)
	}
	if st := h.s.Status(); st.Serving == gen0 {
		t.Errorf("still serving generation %d after a promoted pass", gen0)
	}

	metrics, err := client.New(h.sock).Raw(t.Context(), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"graft_shadow_mirrored_total", "graft_shadow_compared_total", "graft_shadow_dropped_total", "graft_shadow_divergent_fields"} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	page, _, err := graft(t, "report", "--admin", h.sock, "--html")
	if err != nil || !strings.Contains(page, `data-verdict="pass"`) {
		t.Errorf("report --html: %v\n%.300s", err, page)
	}
}

func TestGraftShadowDetachAndStop(t *testing.T) {
	h := startSupervisor(t)
	exe, _ := os.Executable()
	out, stderr, err := graft(t, "shadow", "--admin", h.sock, "--detach", "--", exe, "fixture-server", "-port", "{port}", "-bug", "value")
	if err != nil || !strings.Contains(out, "shadow started") {
		t.Fatalf("shadow --detach: %v\n%s%s", err, out, stderr)
	}
	if _, _, err := graft(t, "shadow", "--admin", h.sock, "--detach", "--", exe, "fixture-server"); err == nil || !strings.Contains(err.Error(), "already in progress") {
		t.Errorf("second shadow: %v, want already in progress", err)
	}
	out, _, err = graft(t, "shadow", "stop", "--admin", h.sock)
	if err != nil || !strings.Contains(out, "state: done") {
		t.Fatalf("shadow stop: %v\n%s", err, out)
	}
	if _, _, err := graft(t, "shadow", "--admin", h.sock); !errors.Is(err, cli.ErrUsage) {
		t.Errorf("shadow without a command: %v, want usage error", err)
	}
}

// TestGraftRunWiresShadow runs graft run itself (the CLI), so that the
// shadow's registration as a run feature is what serves /v1/shadow.
func TestGraftRunWiresShadow(t *testing.T) {
	exe, _ := os.Executable()
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var runOut syncBuffer
	go func() {
		done <- cli.Run(ctx, []string{"run", "--admin", sock, "--proxy", "--listen", "http=127.0.0.1:0", "--probation", "100ms",
			"--", exe, "fixture-server", "-port", "{port}"}, &runOut, &runOut)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("graft run: %v\n%s", err, runOut.String())
		}
	}()
	c := client.New(sock)
	var st *api.Status
	for {
		var err error
		if st, err = c.Status(t.Context()); err == nil && st.Serving != 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("graft run exited: %v\n%s", err, runOut.String())
		case <-time.After(20 * time.Millisecond): // polling the admin API until the first generation serves
		}
	}
	url := "http://" + st.Listeners[0].Addr
	tctx, tcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; tctx.Err() == nil; i++ {
			req, _ := http.NewRequestWithContext(tctx, "GET", fmt.Sprintf("%s/users/%d", url, i%31), nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	})
	defer func() { tcancel(); wg.Wait() }()
	out, stderr, err := graft(t, "shadow", "--admin", sock, "--requests", "300", "--lane-priority", "normal", "--", exe, "fixture-server", "-port", "{port}", "-bug", "value")
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != 1 || !strings.Contains(out, "body.plan") {
		t.Fatalf("graft shadow through graft run: %v\n%s%s", err, out, stderr)
	}
}

// syncBuffer is a bytes.Buffer safe for the writes of graft run's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
