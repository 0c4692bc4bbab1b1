package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	"github.com/graftdev/graft/client"
	"github.com/graftdev/graft/internal/adminhttp"
	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/listener/listenertest"
	"github.com/graftdev/graft/internal/loadtest"
)

func count(t *testing.T, resp *http.Response) int {
	t.Helper()
	n, err := strconv.Atoi(resp.Header.Get("X-Count"))
	if err != nil {
		t.Fatalf("X-Count %q: %v", resp.Header.Get("X-Count"), err)
	}
	return n
}

func (h *harness) post() *http.Response {
	h.t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Post(h.url, "application/json", strings.NewReader(`{}`))
	if err != nil {
		h.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// The serving generation's state (a POST counter) crosses to the next one
// through GRAFT_STATE_FD; a failed successor leaves it intact; a rollback
// sends it back.
func TestStateHandoff(t *testing.T) {
	for _, proxy := range []bool{false, true} {
		t.Run(fmt.Sprintf("proxy=%v", proxy), func(t *testing.T) { testStateHandoff(t, proxy) })
	}
}

func testStateHandoff(t *testing.T, proxy bool) {
	h := run(t, Options{Proxy: proxy, Command: fix("-ctl", "-state", "-version", "1"), Probation: 20 * time.Second})
	// hello arrives just after READY=1.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	h.s.WaitFor(ctx, func(st *api.Status) bool { return hasEvent(st, "hello") })
	for range 5 {
		h.post()
	}
	if n := count(t, h.mustAnswer()); n != 5 {
		t.Fatalf("count %d before upgrade, want 5", n)
	}

	_, err := h.s.Upgrade(t.Context(), fix("-ctl", "-state", "-version", "2", "-crash-before-ready"))
	if err == nil {
		t.Fatal("upgrade to a crashing generation succeeded")
	}
	if resp := h.post(); resp.Header.Get("X-Version") != "1" || count(t, resp) != 6 {
		t.Fatalf("after failed upgrade: version %s count %s, want 1 and 6", resp.Header.Get("X-Version"), resp.Header.Get("X-Count"))
	}

	res, err := h.s.Upgrade(t.Context(), fix("-ctl", "-state", "-version", "2"))
	if err != nil {
		t.Fatal(err)
	}
	h.waitGen(res.Previous, api.GenParked)
	resp := h.post()
	if resp.Header.Get("X-Version") != "2" || count(t, resp) != 7 {
		t.Fatalf("after upgrade: version %s count %s, want 2 and 7", resp.Header.Get("X-Version"), resp.Header.Get("X-Count"))
	}

	rb, err := h.s.Rollback(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rb.Generation != res.Previous {
		t.Fatalf("rolled back to %d, want %d", rb.Generation, res.Previous)
	}
	h.waitGen(res.Generation, api.GenExited)
	resp = h.post()
	if resp.Header.Get("X-Version") != "1" || count(t, resp) != 8 {
		t.Fatalf("after rollback: version %s count %s, want 1 and 8 (state returned)", resp.Header.Get("X-Version"), resp.Header.Get("X-Count"))
	}
}

// A real third-party server that knows nothing of graft, upgraded under
// load in proxy mode.
func TestPythonHTTPServer(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	cmd := []string{py, "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", t.TempDir()}
	h := run(t, Options{Proxy: true, Command: cmd, Probation: 100 * time.Millisecond})
	// http.server answers POST with 501: an answer all the same. Failures
	// are transport errors and the proxy's own 502/503.
	l := loadtest.Start(t.Context(), loadtest.Options{URL: h.url, KeepAlive: 8, Fresh: 1,
		Accept: func(code int) bool { return code == 200 || code == 501 }})
	h.waitRequests(l, 50)
	for range 3 {
		if _, err := h.s.Upgrade(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		h.waitRequests(l, 100)
	}
	checkLoad(t, l.Stop())
	st := h.s.Status()
	var total uint64
	for _, g := range st.Generations {
		total += g.Requests
	}
	if st.Serving != 4 || total == 0 {
		t.Errorf("serving %d with %d requests counted, want generation 4 and requests", st.Serving, total)
	}
}

func TestAdminAPI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	sock := filepath.Join(dir, "admin.sock")
	tokenAddr := freeAddr(t)
	h := run(t, Options{Command: fix("-version", "1"), AdminSocket: sock, AdminTCP: tokenAddr, AdminToken: "s3cret"})

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("admin dir mode %v, want 0700", di.Mode().Perm())
	}

	c := client.New(sock)
	st, err := c.Status(t.Context())
	if err != nil || st.Version != 1 || st.Serving == 0 || st.Mode != "socket" {
		t.Fatalf("status = %+v, %v", st, err)
	}

	// A second supervisor on the same socket is refused.
	s2, err := New(Options{Command: fix(), Listen: []listener.Spec{{Name: "x", Addr: "127.0.0.1:0"}}, AdminSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	if err := s2.Run(ctx2); !errors.Is(err, listener.ErrInUse) {
		t.Errorf("second supervisor on the same socket: %v, want ErrInUse", err)
	}

	// Malformed requests get api.Error bodies and proper statuses; the
	// service keeps serving.
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/v1/upgrade", `{bad`, 400},
		{"POST", "/v1/upgrade", `{"command": 3}`, 400},
		{"POST", "/v1/upgrade", `{"nope": []}`, 400},
		{"POST", "/v1/rollback", `[`, 400},
		{"GET", "/v1/nothing", ``, 404},
		{"DELETE", "/v1/status", ``, 404},
		{"POST", "/v1/rollback", ``, 409},
	} {
		t.Run(tc.method+tc.path+tc.body, func(t *testing.T) {
			var e api.Error
			code := doRaw(t, sock, "", tc.method, tc.path, tc.body, &e)
			if code != tc.code {
				t.Errorf("status %d, want %d", code, tc.code)
			}
			if e.Error == "" || e.Version != 1 {
				t.Errorf("error body %+v", e)
			}
		})
	}
	h.mustAnswer()

	// Upgrades are serialized: a second one while one runs is refused.
	var wg sync.WaitGroup
	var slowErr error
	wg.Go(func() {
		_, slowErr = c.Upgrade(t.Context(), api.UpgradeRequest{Command: fix("-version", "2", "-ready-delay", "1s")})
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	h.s.WaitFor(ctx, func(st *api.Status) bool { return st.Upgrading })
	_, err = c.Upgrade(t.Context(), api.UpgradeRequest{})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || !strings.Contains(apiErr.Message, "in progress") {
		t.Errorf("concurrent upgrade: %v, want 409 in progress", err)
	}
	wg.Wait()
	if slowErr != nil {
		t.Errorf("slow upgrade: %v", slowErr)
	}

	metrics, err := c.Raw(t.Context(), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`graft_upgrades_total{result="ok"} 1`, `graft_upgrades_total{result="busy"} 1`, `graft_generations{state="serving"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// TCP admin: only with the bearer token.
	if code := doRaw(t, "", tokenAddr, "GET", "/v1/status", "", nil); code != 401 {
		t.Errorf("TCP admin without token: %d, want 401", code)
	}
	var st2 api.Status
	if code := doRaw(t, "", tokenAddr+"|s3cret", "GET", "/v1/status", "", &st2); code != 200 || st2.Version != 1 {
		t.Errorf("TCP admin with token: %d %+v", code, st2)
	}

	h.stop()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket left behind: %v", err)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// doRaw sends a request over the unix socket sock, or to tcp "addr|token".
func doRaw(t *testing.T, sock, tcp, method, path, body string, out any) int {
	t.Helper()
	tr := &http.Transport{}
	url := "http://graft" + path
	var token string
	if sock != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
	} else {
		addr, tok, _ := strings.Cut(tcp, "|")
		url, token = "http://"+addr+path, tok
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := jsonUnmarshal(data, out); err != nil && resp.StatusCode != 405 {
			t.Errorf("%s %s: body %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// A serving generation that keeps crashing is restarted with growing
// delays, and OnCrash sees each crash with its stderr.
func TestCrashRestartBackoff(t *testing.T) {
	var mu sync.Mutex
	var crashes []Crash
	opts := Options{Command: fix("-crash-after", "30ms"), RestartBackoff: 50 * time.Millisecond}
	opts.Listen = []listener.Spec{{Name: "http", Addr: "127.0.0.1:0"}}
	opts.Output = io.Discard
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.OnCrash(func(c Crash) {
		mu.Lock()
		defer mu.Unlock()
		crashes = append(crashes, c)
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var delays []time.Duration
	wctx, wcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer wcancel()
	err = s.WaitFor(wctx, func(st *api.Status) bool {
		delays = delays[:0]
		for _, e := range st.Events {
			if d, ok := strings.CutPrefix(e.Message, "restarting in "); ok {
				dd, _ := time.ParseDuration(d)
				delays = append(delays, dd)
			}
		}
		return len(delays) >= 4
	})
	if err != nil {
		t.Fatalf("restarts: %v (%v)", err, delays)
	}
	for i := 1; i < len(delays); i++ {
		if delays[i] <= delays[i-1] {
			t.Errorf("restart delays do not grow: %v", delays)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(crashes) < 3 {
		t.Fatalf("OnCrash saw %d crashes, want at least 3", len(crashes))
	}
	if c := crashes[0]; !c.Serving || c.Err == nil || !strings.Contains(string(c.Stderr), "crashing after ready") {
		t.Errorf("crash = serving %v err %v stderr %q", c.Serving, c.Err, c.Stderr)
	}
}

// graft adopts sockets it inherited (socket activation) by name, serves
// unix listeners, and starts children through /bin/sh when its binary has
// no shim.
func TestInheritedUnixAndShellShim(t *testing.T) {
	for _, shim := range []bool{true, false} {
		t.Run(fmt.Sprintf("shim=%v", shim), func(t *testing.T) {
			old := shimArgv
			if !shim {
				shimArgv = listener.ShellShimArgv
			}
			t.Cleanup(func() { shimArgv = old })
			f, addr := listenertest.InheritedTCP(t)
			path := filepath.Join(t.TempDir(), "http.sock")
			h := run(t, Options{
				Command:   fix("-ctl", "-version", "1"),
				Listen:    []listener.Spec{{Name: "web", Addr: "127.0.0.1:1"}, {Name: "local", Addr: "unix:" + path}},
				Inherited: []listener.Inherited{{Name: "web", File: f}},
			})
			if got := h.s.Addrs()[0]; got != addr {
				t.Errorf("listener web at %s, want the inherited %s", got, addr)
			}
			uc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			}}}
			if _, err := h.s.Upgrade(t.Context(), fix("-ctl", "-version", "2")); err != nil {
				t.Fatal(err)
			}
			resp, err := uc.Get("http://x/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Header.Get("X-Version") != "2" {
				t.Errorf("unix listener answered by version %q", resp.Header.Get("X-Version"))
			}
			h.mustAnswer()
		})
	}
}

// The extension API: extra env, extra admin routes, lanes, serving socket.
func TestExtensionAPI(t *testing.T) {
	opts := Options{Proxy: true, Command: fix("-version", "1"), Output: io.Discard, Listen: []listener.Spec{{Name: "http", Addr: "127.0.0.1:0"}}}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.AddEnv(func(gen int) []string { return []string{"FIXTURE_EXTRA=gen" + strconv.Itoa(gen)} })
	s.Handle("GET /v1/hello", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	h := &harness{t: t, s: s, url: "http://" + s.Addrs()[0] + "/"}
	gen := h.waitServing(0)
	if resp := h.mustAnswer(); resp.Header.Get("X-Extra") != "gen"+strconv.Itoa(gen) {
		t.Errorf("AddEnv: X-Extra %q", resp.Header.Get("X-Extra"))
	}
	if n, rt := s.Serving(); n != gen || !strings.HasSuffix(rt, fmt.Sprintf("rt-%d.sock", gen)) {
		t.Errorf("Serving() = %d %q", n, rt)
	}
	if s.Proxy() == nil {
		t.Error("Proxy() is nil in proxy mode")
	}
	rec := &recorder{header: http.Header{}}
	s.Handler().ServeHTTP(rec, httptestRequest("GET", "/v1/hello"))
	if rec.body.String() != "hi" {
		t.Errorf("extra route answered %q", rec.body.String())
	}
	lane, err := s.StartLane(t.Context(), "candidate", fix("-version", "c"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + lane.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Version") != "c" {
		t.Errorf("lane answered version %q", resp.Header.Get("X-Version"))
	}
	if err := lane.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-lane.Done()
	if s.Status().Serving != gen {
		t.Error("stopping a lane changed the serving generation")
	}
	h.mustAnswer()
}

// In proxy mode with an http probe, a new generation that turns unhealthy
// during probation is rolled back to the parked one.
func TestUnhealthyDuringProbation(t *testing.T) {
	h := run(t, Options{Proxy: true, Ready: "http:/healthz", Command: fix("-version", "1"), Probation: 20 * time.Second})
	first := h.s.Status().Serving
	l := h.load()
	res, err := h.s.Upgrade(t.Context(), fix("-version", "2", "-sick-after", "300ms"))
	if err != nil {
		t.Fatal(err)
	}
	if back := h.waitServing(res.Generation); back != first {
		t.Errorf("serving %d after the probe failed, want the parked %d", back, first)
	}
	h.waitRequests(l, 100)
	checkLoad(t, l.Stop())
	if st := h.s.Status(); !hasEvent(st, "unhealthy") || !hasEvent(st, "rollback") {
		t.Errorf("events lack unhealthy/rollback: %v", st.Events)
	}
}

// graft tells its own NOTIFY_SOCKET READY=1 once the first generation
// serves, and serves metrics on --metrics.
func TestNotifyAndMetricsAddr(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	maddr := freeAddr(t)
	h := run(t, Options{Command: fix(), NotifySocket: path, MetricsAddr: maddr})
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := nc.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("own notify socket got %q, %v", buf[:n], err)
	}
	if h.s.Status().Serving == 0 {
		t.Error("READY=1 before a generation serves")
	}
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `graft_generations{state="serving"} 1`) {
		t.Errorf("metrics on --metrics lack the serving gauge:\n%s", body)
	}
}

// A stale admin socket file (nothing answers) is replaced; options that
// cannot work are refused before anything starts.
func TestStaleSocketAndBadOptions(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	h := run(t, Options{Command: fix(), AdminSocket: sock})
	if _, err := client.New(sock).Status(t.Context()); err != nil {
		t.Errorf("status over the replaced socket: %v", err)
	}
	h.stop()

	listen := []listener.Spec{{Name: "a", Addr: "127.0.0.1:0"}}
	for name, o := range map[string]Options{
		"no command":               {Listen: listen},
		"no listener":              {Command: fix()},
		"duplicate names":          {Command: fix(), Listen: append(listen, listener.Spec{Name: "a", Addr: "127.0.0.1:0"})},
		"tcp probe in socket mode": {Command: fix(), Listen: listen, Ready: "tcp"},
		"tcp admin without token":  {Command: fix(), Listen: listen, AdminTCP: "127.0.0.1:0"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}

func FuzzDecodeUpgradeBody(f *testing.F) {
	for _, s := range []string{"", "{}", `{"command":["a","b"]}`, `{"command":3}`, `{bad`, `{"x":1}`, "null", `{"command":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptestRequest("POST", "/v1/upgrade")
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		var req api.UpgradeRequest
		if err := adminhttp.DecodeOptional(r, &req); err != nil {
			return
		}
		// What was accepted must survive a round trip unchanged.
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		r2 := httptestRequest("POST", "/v1/upgrade")
		r2.Body = io.NopCloser(strings.NewReader(string(b)))
		var again api.UpgradeRequest
		if err := adminhttp.DecodeOptional(r2, &again); err != nil || !slices.Equal(again.Command, req.Command) {
			t.Errorf("round trip of %q: %q, %v", body, again.Command, err)
		}
	})
}

// A socket-mode child that never notifies is usable with --ready delay:DUR.
func TestReadyDelay(t *testing.T) {
	h := run(t, Options{Command: fix("-never-ready", "-version", "1"), Ready: "delay:50ms"})
	l := h.load()
	res, err := h.s.Upgrade(t.Context(), fix("-never-ready", "-version", "2"))
	if err != nil {
		t.Fatal(err)
	}
	if res.ReadyMS < 50 {
		t.Errorf("ready after %.1f ms, before the 50ms delay", res.ReadyMS)
	}
	h.waitRequests(l, 100)
	checkLoad(t, l.Stop())
}

// When a generation dies, what it left in its process group dies too (a
// stray child would keep accepting from the shared socket and hold the
// output pipes), and the crash is still seen and restarted.
func TestStrayChildrenKilled(t *testing.T) {
	dir := t.TempDir()
	script := fmt.Sprintf(`sleep 300 & echo $! > %s/stray-$GRAFT_GENERATION.pid; exec %s -version 1 -crash-after 300ms`, dir, fixture)
	h := run(t, Options{Command: []string{"/bin/sh", "-c", script}})
	first := h.s.Status().Serving
	h.waitServing(first) // restarted after the crash
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("stray-%d.pid", first)))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The stray is killed before the exit is handled, so before the restart.
	// Killed, it is gone or a zombie waiting for init to reap it.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 0 && fields[0] != "Z" && fields[0] != "X" {
			t.Errorf("stray child %d of the crashed generation still runs (state %s)", pid, fields[0])
		}
	}
}

// graft run with a command that cannot be executed fails instead of
// retrying forever.
func TestFirstCommandMissing(t *testing.T) {
	s, err := New(Options{Command: []string{filepath.Join(t.TempDir(), "nope")}, Listen: []listener.Spec{{Name: "a", Addr: "127.0.0.1:0"}}, Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err = s.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Run = %v, want a missing-file error", err)
	}
	if ctx.Err() != nil {
		t.Error("Run waited for its context instead of failing")
	}
}

// Upgrade without a command runs the same command line again, read anew
// from disk: replace the binary, upgrade, and the new one serves.
func TestUpgradeReplacedBinary(t *testing.T) {
	dir := t.TempDir()
	svc := filepath.Join(dir, "svc")
	write := func(version string) {
		// A new file renamed over the old one, as installers do.
		tmp := svc + ".new"
		script := fmt.Sprintf("#!/bin/sh\nexec %s -version %s \"$@\"\n", fixture, version)
		if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, svc); err != nil {
			t.Fatal(err)
		}
	}
	write("1")
	h := run(t, Options{Command: []string{svc}})
	l := h.load()
	write("2")
	res, err := h.s.Upgrade(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.waitGen(res.Previous, api.GenExited)
	h.waitRequests(l, 100)
	checkLoad(t, l.Stop())
	if resp := h.mustAnswer(); resp.Header.Get("X-Version") != "2" {
		t.Errorf("answered by version %q after replacing the binary, want 2", resp.Header.Get("X-Version"))
	}
}
