package checks

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/instrument"
)

// fakeSup is a hand-written supervisor: a mux, one serving generation.
type fakeSup struct {
	mux    *http.ServeMux
	sock   string
	mu     sync.Mutex
	events []string
	env    []func(int) []string
}

func (f *fakeSup) Handle(p string, h http.Handler)  { f.mux.Handle(p, h) }
func (f *fakeSup) Serving() (int, string)           { return 1, f.sock }
func (f *fakeSup) AddEnv(fn func(gen int) []string) { f.env = append(f.env, fn) }
func (f *fakeSup) Event(gen int, kind, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, kind+": "+msg)
}

// startSvc builds testdata/svc with graft and runs it alone with an rt
// socket; it returns the service's base URL, the socket and the manifest.
func startSvc(t *testing.T) (string, string, *api.Manifest) {
	t.Helper()
	dir, _ := filepath.Abs("testdata/svc")
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "svc")
	b, err := instrument.Prepare(t.Context(), instrument.Options{Dir: dir, CacheDir: filepath.Join(tmp, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := b.Command(t.Context(), "build", nil, "-o", bin, ".")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sock := filepath.Join(tmp, "rt.sock")
	run := exec.Command(bin, "127.0.0.1:0")
	run.Env = append(os.Environ(), "GRAFT_RT_SOCKET="+sock)
	out, _ := run.StdoutPipe()
	run.Stderr = os.Stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Process.Kill(); run.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("service did not start: %v", err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	// The socket is served from rt's init, before main prints.
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("no rt socket: %v", err)
	}
	if fi, _ := os.Stat(sock); fi.Mode().Perm() != 0o600 {
		t.Errorf("rt socket mode %v, want 0600", fi.Mode().Perm())
	}
	return "http://" + addr, sock, &b.Manifest
}

func get(t *testing.T, url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// siteID returns the id of fn's site of kind in the manifest.
func siteID(t *testing.T, m *api.Manifest, fn, kind string) string {
	t.Helper()
	for _, s := range m.Sites {
		if s.Func == fn && s.Kind == kind {
			return s.ID
		}
	}
	t.Fatalf("no %s site in %s: %+v", kind, fn, m.Sites)
	return ""
}

func TestChecksThroughSupervisorAPI(t *testing.T) {
	base, sock, m := startSvc(t)
	site := siteID(t, m, "lookup", "index")
	pub, priv, _ := ed25519.GenerateKey(nil)
	sup := &fakeSup{mux: http.NewServeMux(), sock: sock}
	Attach(sup, Options{AlertKey: pub, Providers: []Provider{&memProvider{ids: map[string]bool{"guard.body_size": false}}}})
	srv := httptest.NewServer(sup.mux)
	defer srv.Close()

	post := func(req api.ChecksSet) (int, api.ChecksResult) {
		body, _ := json.Marshal(req)
		resp, err := http.Post(srv.URL+"/v1/checks", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res api.ChecksResult
		json.NewDecoder(resp.Body).Decode(&res)
		return resp.StatusCode, res
	}

	// List: the program's sites and points plus the provider's guard.
	resp, err := http.Get(srv.URL + "/v1/checks")
	if err != nil {
		t.Fatal(err)
	}
	var l api.CheckList
	json.NewDecoder(resp.Body).Decode(&l)
	resp.Body.Close()
	kinds := map[string]bool{}
	for _, c := range l.Checks {
		kinds[c.Kind] = true
	}
	if l.Version != 1 || !kinds["index"] || !kinds["point"] || !kinds["guard"] {
		t.Fatalf("list lacks sites, points or guards: %+v", l)
	}

	if code, res := post(api.ChecksSet{On: true, IDs: []string{site, "guard.body_size"}}); code != 200 || len(res.Changed) != 2 {
		t.Fatalf("switch on: %d %+v", code, res)
	}
	if code, body := get(t, base+"/?i=7"); code != 503 || !strings.Contains(body, "check "+site) {
		t.Errorf("with the site on, the crashing request got %d %q", code, body)
	}
	if code, body := get(t, base+"/?i=2"); code != 200 || body != "c" {
		t.Errorf("with the site on, a good request got %d %q", code, body)
	}
	env := sup.env[0](2)
	if len(env) != 1 || env[0] != "GRAFT_SITES="+site {
		t.Errorf("next generation env %q, want GRAFT_SITES=%s", env, site)
	}
	if code, _ := post(api.ChecksSet{On: true, IDs: []string{"no.such:index:00000000"}}); code != 404 {
		t.Errorf("unknown id: status %d, want 404", code)
	}

	// A signed alert switches the sealing of lookup on; a tampered one is
	// refused.
	alert, err := api.SignAlert(priv, api.AlertBody{ID: "GRAFT-T-1", Expires: time.Now().Add(time.Hour), Checks: []api.AlertCheck{{ID: "main.lookup"}}})
	if err != nil {
		t.Fatal(err)
	}
	bad := *alert
	bad.Body = bad.Body[:len(bad.Body)-4] + "AAA="
	if code, _ := post(api.ChecksSet{Alert: &bad}); code != 400 {
		t.Errorf("tampered alert: status %d, want 400", code)
	}
	if code, res := post(api.ChecksSet{Alert: alert}); code != 200 || len(res.Changed) != 1 {
		t.Fatalf("alert: %d %+v", code, res)
	}
	if code, body := get(t, base+"/?i=1"); code != 503 || !strings.Contains(body, "main.lookup is sealed") {
		t.Errorf("after the alert sealed lookup: %d %q", code, body)
	}
	if len(sup.events) == 0 {
		t.Error("no supervisor events")
	}
}

func TestRTSocketDirect(t *testing.T) {
	base, sock, _ := startSvc(t)
	r := RT(sock)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := r.Do(ctx, api.RTRequest{Op: "seal", IDs: []string{"main.lookup"}})
	if err != nil || len(resp.Changed) != 1 || resp.PID == 0 {
		t.Fatalf("seal: %+v %v", resp, err)
	}
	if code, _ := get(t, base+"/?i=1"); code != 503 {
		t.Errorf("sealed: %d", code)
	}
	if _, err := r.Do(ctx, api.RTRequest{Op: "unseal", IDs: []string{"main.lookup"}}); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, base+"/?i=1"); code != 200 || body != "b" {
		t.Errorf("unsealed: %d %q", code, body)
	}
	if _, err := r.Do(ctx, api.RTRequest{Op: "nonsense"}); err == nil {
		t.Error("unknown op accepted")
	}
	// A malformed line gets an error answer, not a hang.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("{not json\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var answer api.RTResponse
	if err := json.NewDecoder(c).Decode(&answer); err != nil || answer.Error == "" {
		t.Errorf("malformed request: %+v %v", answer, err)
	}
	c.Close()
}

// TestWireTypesAgree checks that rt's mirror of the wire types decodes into
// api's (rt cannot import api).
func TestWireTypesAgree(t *testing.T) {
	_, sock, _ := startSvc(t)
	resp, err := RT(sock).Do(t.Context(), api.RTRequest{Op: "list"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version != 1 || resp.List == nil || len(resp.List.Checks) == 0 || resp.List.Checks[0].Provider != "rt" || resp.List.Checks[0].File == "" {
		t.Errorf("list answer does not fill api types: %+v", resp)
	}
}

type memProvider struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (p *memProvider) List(ctx context.Context) ([]api.Check, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []api.Check
	for id, on := range p.ids {
		out = append(out, api.Check{ID: id, Kind: "guard", Provider: "guard", On: on})
	}
	return out, nil
}

func (p *memProvider) Set(ctx context.Context, id string, on bool, params map[string]string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.ids[id]; !ok {
		return ErrUnknown
	}
	p.ids[id] = on
	return nil
}

var _ = errors.New

// TestLoopSiteStopsRunningLoop switches a loop site on while its loop is
// already running: make and loop sites read their own switch at every
// check, so the running loop stops (with a panic, which net/http's handler
// recovery ends, since the function entered before checks were armed and
// so converts nothing), and later calls return the site's error.
func TestLoopSiteStopsRunningLoop(t *testing.T) {
	base, sock, m := startSvc(t)
	id := siteID(t, m, "spin", "loop")
	type answer struct {
		code int
		body string
	}
	hung := make(chan answer, 1)
	go func() {
		code, body := get(t, base+"/spin?n=-1")
		hung <- answer{code, body}
	}()
	// Await the loop: spin counts itself in before it loops.
	for {
		if _, body := get(t, base+"/spinning"); body == "1" {
			break
		}
		select {
		case a := <-hung:
			t.Fatalf("spin returned before the site was on: %+v", a)
		case <-t.Context().Done():
			t.Fatal("spin never started")
		case <-time.After(10 * time.Millisecond):
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := RT(sock).Do(ctx, api.RTRequest{Op: "on", IDs: []string{id}, Limit: 1000})
	if err != nil || len(resp.Changed) != 1 {
		t.Fatalf("on %s: %+v %v", id, resp, err)
	}
	select {
	case a := <-hung:
		if a.code == http.StatusOK {
			t.Errorf("the running loop finished normally: %+v", a)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the running loop was not stopped within 60 s of switching its site on")
	}
	if code, body := get(t, base+"/spin?n=-1"); code != http.StatusServiceUnavailable || !strings.Contains(body, id) {
		t.Errorf("a later hang: %d %q, want 503 naming %s", code, body, id)
	}
	if code, body := get(t, base+"/spin?n=5"); code != http.StatusOK || body != "5" {
		t.Errorf("a loop under the limit: %d %q", code, body)
	}
}
