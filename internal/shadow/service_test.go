package shadow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/proxy"
	"github.com/graftdev/graft/internal/shadow/differ"
)

// fakeLane is an httptest server standing in for a lane process.
type fakeLane struct {
	srv  *httptest.Server
	done chan struct{}
	once sync.Once
}

func newFakeLane(h http.Handler) *fakeLane {
	return &fakeLane{srv: httptest.NewServer(h), done: make(chan struct{})}
}
func (l *fakeLane) Addr() string          { return addr(l.srv) }
func (l *fakeLane) Done() <-chan struct{} { return l.done }
func (l *fakeLane) Stop(context.Context) error {
	l.exit()
	return nil
}
func (l *fakeLane) exit() {
	l.once.Do(func() {
		l.srv.CloseClientConnections()
		l.srv.Close()
		close(l.done)
	})
}

// rig is a real proxy in front of a primary, with a shadow service whose
// lanes are handlers chosen by the test.
type rig struct {
	proxyURL string
	svc      *Service
	admin    *httptest.Server
	lanes    map[string]*fakeLane
	prio     map[string]string // the priority each role's lane was started at
	upgrades [][]string
	hooks    atomic.Pointer[proxy.Hooks] // the last ones the service installed
	mu       sync.Mutex
}

func newRig(t *testing.T, primary, candidate, secondary http.Handler, opts ServiceOptions) *rig {
	t.Helper()
	psrv := httptest.NewServer(primary)
	t.Cleanup(psrv.Close)
	p := proxy.New(proxy.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	p.SetPrimary(proxy.NewBackend(1, addr(psrv)))
	rg := &rig{proxyURL: "http://" + ln.Addr().String(), lanes: map[string]*fakeLane{}, prio: map[string]string{}}
	handlers := map[string]http.Handler{"candidate": candidate, "secondary": secondary}
	h := Host{
		StartLane: func(ctx context.Context, role string, cmd []string, priority string) (Lane, error) {
			l := newFakeLane(handlers[role])
			rg.mu.Lock()
			rg.lanes[role] = l
			rg.prio[role] = priority
			rg.mu.Unlock()
			t.Cleanup(l.exit)
			return l, nil
		},
		Upgrade: func(ctx context.Context, cmd []string) (*api.UpgradeResult, error) {
			rg.mu.Lock()
			rg.upgrades = append(rg.upgrades, cmd)
			rg.mu.Unlock()
			return &api.UpgradeResult{Version: 1, Generation: 7, Previous: 1}, nil
		},
		ServingCmd: func() ([]string, error) { return []string{"./v1"}, nil },
		SetHooks: func(h proxy.Hooks) {
			rg.hooks.Store(&h)
			p.SetHooks(h)
		},
	}
	if opts.Controller.Worker == nil {
		opts.Controller.Worker = testWorker() // the real worker process
	}
	rg.svc = NewService(h, opts)
	t.Cleanup(rg.svc.Close)
	mux := http.NewServeMux()
	rg.svc.Mount(mux.Handle)
	rg.admin = httptest.NewServer(mux)
	t.Cleanup(rg.admin.Close)
	return rg
}

func (rg *rig) lane(role string) *fakeLane {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.lanes[role]
}

func (rg *rig) post(t *testing.T, path string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(rg.admin.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (rg *rig) report(t *testing.T) *api.Report {
	t.Helper()
	resp, err := http.Get(rg.admin.URL + "/v1/report")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r api.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// traffic sends GETs through the proxy until the run is done (or max).
func (rg *rig) traffic(t *testing.T, max int) {
	t.Helper()
	client := &http.Client{}
	waitRunning(t, rg.svc)
	for i := 0; i < max; i++ {
		if i%50 == 0 && rg.svc.Report().State == api.ShadowDone {
			return
		}
		resp, err := client.Get(fmt.Sprintf("%s/users/%d", rg.proxyURL, i%41))
		if err != nil {
			t.Fatalf("request %d through the proxy: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d from the primary", i, resp.StatusCode)
		}
	}
}

func waitRunning(t *testing.T, s *Service) {
	t.Helper()
	for s.Report().State == api.ShadowStarting {
		time.Sleep(time.Millisecond) // lanes start in a goroutine; polling a state, not timing
	}
}

func TestServicePromoteOnFailStopsCandidate(t *testing.T) {
	rg := newRig(t, &service{}, &service{bug: "value"}, &service{}, ServiceOptions{})
	code, body := rg.post(t, "/v1/shadow", api.ShadowRequest{Command: []string{"./v2", "--port", "{port}"}, Requests: 400, Promote: true})
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/shadow: %d %s", code, body)
	}
	rg.traffic(t, 5000)
	if err := rg.svc.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := rg.report(t)
	if r.State != api.ShadowDone || r.Verdict != api.VerdictFail || r.Promoted != "candidate stopped" {
		t.Fatalf("report state %s verdict %s promoted %q, want done, fail, candidate stopped", r.State, r.Verdict, r.Promoted)
	}
	if len(rg.upgrades) != 0 {
		t.Errorf("upgraded %v on fail", rg.upgrades)
	}
	for _, role := range []string{"candidate", "secondary"} {
		select {
		case <-rg.lane(role).Done():
		default:
			t.Errorf("%s lane not stopped after the run", role)
		}
	}
	if !slices.Equal(r.Candidate, []string{"./v2", "--port", "{port}"}) {
		t.Errorf("report candidate %q", r.Candidate)
	}
}

func TestServicePromoteOnPassUpgrades(t *testing.T) {
	rg := newRig(t, &service{}, &service{}, &service{}, ServiceOptions{})
	// No limit: the run ends when the verdict is decided.
	if _, err := rg.svc.Start(api.ShadowRequest{Command: []string{"./v2"}, Promote: true, TargetRate: 0.05}); err != nil {
		t.Fatal(err)
	}
	rg.traffic(t, 5000)
	if err := rg.svc.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := rg.svc.Report()
	if r.Verdict != api.VerdictPass || r.Ended != "verdict" {
		t.Fatalf("verdict %s ended %q (%s), want pass by verdict", r.Verdict, r.Ended, r.Reason)
	}
	if r.Compared < uint64(differ.Needed(0.05, 0.95)) {
		t.Errorf("passed after %d compared, fewer than the %d needed", r.Compared, differ.Needed(0.05, 0.95))
	}
	if len(rg.upgrades) != 1 || !slices.Equal(rg.upgrades[0], []string{"./v2"}) || r.Promoted != "upgraded to generation 7" {
		t.Errorf("upgrades %v promoted %q, want one upgrade to ./v2", rg.upgrades, r.Promoted)
	}
}

// TestServiceStalledCandidate sends requests through the real proxy while
// the candidate never answers: every client request gets the primary's
// answer while the candidate has still answered none, the candidate holds
// at most Workers requests, and the rest is dropped at the bounded queue.
func TestServiceStalledCandidate(t *testing.T) {
	release := make(chan struct{})
	var got, answered atomic.Int64
	stalled := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		answered.Add(1)
	})
	rg := newRig(t, &service{}, stalled, &service{}, ServiceOptions{Controller: Options{Queue: 8, Workers: 2, Timeout: time.Hour}})
	if _, err := rg.svc.Start(api.ShadowRequest{Command: []string{"./v2"}}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, rg.svc)
	const n = 300
	client := &http.Client{}
	for i := range n {
		resp, err := client.Get(fmt.Sprintf("%s/users/%d", rg.proxyURL, i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"plan":"free"`) {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
	if a := answered.Load(); a != 0 {
		t.Fatalf("candidate answered %d; the test needs it stalled", a)
	}
	// The Observe hook runs after the client's answer; wait for the last one.
	deadline := time.Now().Add(10 * time.Second)
	for rg.svc.Report().Requests < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	r := rg.svc.Report()
	if r.Requests != n || r.Mirrored+r.Dropped != n || r.Mirrored > 8+2 || r.Compared != 0 {
		t.Errorf("requests %d mirrored %d dropped %d compared %d; want %d observed, at most 10 mirrored, the rest dropped, none compared",
			r.Requests, r.Mirrored, r.Dropped, r.Compared, n)
	}
	for got.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // the workers' requests may still be on their way
	}
	if g := got.Load(); g > 2 || g == 0 {
		t.Errorf("candidate holds %d requests, want 1 or 2 (the workers)", g)
	}
	// With every slot taken, the proxy is no longer asked to copy answers.
	if h := rg.hooks.Load(); h == nil || h.Observe == nil || h.ObserveResponse {
		t.Errorf("hooks with every slot taken: %+v, want an Observe that copies nothing", h)
	}
	// The candidate answers again: slots come free, the copying hooks come
	// back, and requests are compared beyond the 10 mirrored so far (an
	// exchange seen without a copy is never mirrored).
	close(release)
	for i := 0; rg.svc.Report().Compared <= 10; i++ {
		resp, err := client.Get(fmt.Sprintf("%s/users/%d", rg.proxyURL, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	rep, err := rg.svc.Stop(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != api.ShadowDone || rep.Ended != "stopped" {
		t.Errorf("after stop: state %s ended %q", rep.State, rep.Ended)
	}
	if h := rg.hooks.Load(); h == nil || h.Observe != nil {
		t.Errorf("hooks after the run: %+v, want none", h)
	}
}

func TestServiceCandidateExits(t *testing.T) {
	rg := newRig(t, &service{}, &service{}, &service{}, ServiceOptions{})
	if _, err := rg.svc.Start(api.ShadowRequest{Command: []string{"./v2"}, Requests: 100000}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, rg.svc)
	rg.lane("candidate").exit()
	if err := rg.svc.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := rg.svc.Report()
	if r.Verdict != api.VerdictFail || r.Ended != "candidate exited" || !strings.Contains(r.Reason, "candidate exited") {
		t.Errorf("verdict %s ended %q reason %q, want fail because the candidate exited", r.Verdict, r.Ended, r.Reason)
	}
}

func TestServiceSecondaryExits(t *testing.T) {
	rg := newRig(t, &service{}, &service{}, &service{}, ServiceOptions{})
	if _, err := rg.svc.Start(api.ShadowRequest{Command: []string{"./v2"}}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, rg.svc)
	rg.lane("secondary").exit()
	if err := rg.svc.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := rg.svc.Report(); r.Ended != "secondary exited" || r.Verdict == api.VerdictFail {
		t.Errorf("ended %q verdict %s, want secondary exited and no fail", r.Ended, r.Verdict)
	}
	select {
	case <-rg.lane("candidate").Done():
	default:
		t.Error("candidate lane still running after the secondary exited")
	}
}

func TestServiceLaneStartFails(t *testing.T) {
	s := NewService(Host{
		StartLane: func(ctx context.Context, role string, cmd []string, _ string) (Lane, error) {
			if role == "candidate" {
				return nil, fmt.Errorf("exec %s: no such file", cmd[0])
			}
			return newFakeLane(&service{}), nil
		},
		ServingCmd: func() ([]string, error) { return []string{"./v1"}, nil },
	}, ServiceOptions{})
	defer s.Close()
	if _, err := s.Start(api.ShadowRequest{Command: []string{"./missing"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := s.Report()
	if r.State != api.ShadowDone || r.Ended != "error" || !strings.Contains(r.Reason, "./missing") {
		t.Errorf("state %s ended %q reason %q, want done by an error naming the command", r.State, r.Ended, r.Reason)
	}
}

func TestServiceAdminAPI(t *testing.T) {
	rg := newRig(t, &service{}, &service{}, &service{}, ServiceOptions{})
	if r := rg.report(t); r.State != api.ShadowIdle || r.Version != 1 || r.Routes == nil {
		t.Errorf("idle report %+v", r)
	}
	if code, _ := rg.post(t, "/v1/shadow/stop", nil); code != http.StatusNotFound {
		t.Errorf("stop with no run: %d, want 404", code)
	}
	for _, bad := range []any{api.ShadowRequest{}, map[string]any{"command": []string{"x"}, "bogus": 1}, api.ShadowRequest{Command: []string{"x"}, Routes: []string{"nope"}},
		map[string]any{"command": []string{"x"}, "lane_priority": "high"}} {
		if code, body := rg.post(t, "/v1/shadow", bad); code != http.StatusBadRequest {
			t.Errorf("POST /v1/shadow %v: %d %s, want 400", bad, code, body)
		}
	}
	if code, body := rg.post(t, "/v1/shadow", api.ShadowRequest{Command: []string{"./v2"}}); code != http.StatusAccepted {
		t.Fatalf("start: %d %s", code, body)
	}
	if code, _ := rg.post(t, "/v1/shadow", api.ShadowRequest{Command: []string{"./v2"}}); code != http.StatusConflict {
		t.Errorf("second start: %d, want 409", code)
	}
	rg.traffic(t, 60)
	for rg.svc.Report().Compared == 0 {
		rg.traffic(t, 10) // until the worker has compared one: the report below needs a route
	}
	code, body := rg.post(t, "/v1/shadow/stop", nil)
	if code != http.StatusOK {
		t.Fatalf("stop: %d %s", code, body)
	}
	rg.mu.Lock()
	if rg.prio["candidate"] != PriorityIdle || rg.prio["secondary"] != PriorityIdle {
		t.Errorf("lanes started at %v, want idle by default", rg.prio)
	}
	rg.mu.Unlock()
	var r api.Report
	if err := json.Unmarshal(body, &r); err != nil || r.State != api.ShadowDone || r.Compared == 0 {
		t.Errorf("stop answer %s (%v)", body, err)
	}
	// The JSON contract of graft report --json.
	var raw map[string]any
	json.Unmarshal(body, &raw)
	for _, k := range []string{"version", "verdict", "requests", "compared", "routes"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	route := raw["routes"].([]any)[0].(map[string]any)
	for _, k := range []string{"route", "compared", "diffs", "noise", "divergent", "fields"} {
		if _, ok := route[k]; !ok {
			t.Errorf("route lacks %q", k)
		}
	}
	field := route["fields"].([]any)[0].(map[string]any)
	for _, k := range []string{"path", "diffs", "noise", "divergent"} {
		if _, ok := field[k]; !ok {
			t.Errorf("field lacks %q", k)
		}
	}
	resp, err := http.Get(rg.admin.URL + "/v1/report.html")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page), "GET /users/{id}") {
		t.Errorf("report.html: %s\n%.500s", resp.Header.Get("Content-Type"), page)
	}
	// A new run may start once the last is done, here at normal priority.
	if code, body := rg.post(t, "/v1/shadow", api.ShadowRequest{Command: []string{"./v3"}, LanePriority: "normal"}); code != http.StatusAccepted {
		t.Fatalf("start after stop: %d %s", code, body)
	}
	waitRunning(t, rg.svc)
	rg.mu.Lock()
	if rg.prio["candidate"] != PriorityNormal || rg.prio["secondary"] != PriorityNormal {
		t.Errorf("lanes started at %v, want normal", rg.prio)
	}
	rg.mu.Unlock()
}
