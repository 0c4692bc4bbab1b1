package shadow

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/proxy"
	"github.com/graftdev/graft/internal/shadow/differ"
	"github.com/graftdev/graft/internal/shadow/worker"
)

// service is a small JSON service whose answers carry nondeterministic
// fields: a timestamp, a random id, and map keys in Go's random order. bug
// seeds a regression. (A field that is random only part of the time, such
// as a coin flip, is judged by the sequential test, whose false alarms are
// bounded by alpha per run rather than zero; TestDifferOldVsOld has one
// with a fixed seed, TestEvidenceFalseAlarms measures the rate.)
type service struct {
	bug     string
	methods sync.Map // method → *atomic.Int64, what reached it
	hits    atomic.Int64
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	v, _ := s.methods.LoadOrStore(r.Method, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	id := strings.TrimPrefix(r.URL.Path, "/users/")
	fields := map[string]string{
		"id":    id,
		"name":  fmt.Sprintf("%q", "user"+id),
		"plan":  `"free"`,
		"at":    fmt.Sprintf("%q", time.Now().Format(time.RFC3339Nano)),
		"trace": fmt.Sprintf("%q", fmt.Sprintf("%x", rand.Uint64())),
	}
	status := 200
	switch s.bug {
	case "value":
		fields["plan"] = `"pro"`
	case "missing":
		delete(fields, "name")
	case "type":
		fields["id"] = fmt.Sprintf("%q", id)
	case "status":
		status = 203
	case "header":
		w.Header().Set("Cache-Control", "no-store")
	}
	var b strings.Builder
	b.WriteString("{")
	first := true
	for k, v := range fields { // Go's map order: random on purpose
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "%q:%s", k, v)
	}
	b.WriteString("}")
	w.Header().Set("Content-Type", "application/json")
	if s.bug != "header" {
		w.Header().Set("Cache-Control", "max-age=60")
	}
	w.WriteHeader(status)
	io.WriteString(w, b.String())
}

func (s *service) count(method string) int64 {
	if v, ok := s.methods.Load(method); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// fetch asks the primary directly, as the proxy would, and returns what
// Observe gets.
func fetch(t *testing.T, client *http.Client, base, method, path string) (*Request, *differ.Answer) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("primary %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &Request{Gen: 1, Method: method, Path: path, Header: http.Header{"Accept": {"application/json"}}},
		&differ.Answer{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func addr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// drive feeds primary exchanges to c until its run ends or limit requests
// were sent, and returns the final report.
func drive(t *testing.T, c *Controller, primary string, limit int, paths func(i int) (method, path string)) *api.Report {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(t.Context()) }()
	client := &http.Client{}
	for i := 0; i < limit; i++ {
		select {
		case <-c.Done():
			i = limit
			continue
		default:
		}
		m, p := paths(i)
		req, ans := fetch(t, client, primary, m, p)
		c.Observe(req, ans)
		if c.inFlightFull() {
			// Give the workers a moment; dropping is tested elsewhere.
			for len(c.free) < cap(c.free)/2 {
				select {
				case <-c.Done():
				case <-time.After(time.Millisecond):
					continue
				}
				break
			}
		}
	}
	if c.opts.Requests > 0 {
		// Let the last mirrored exchanges finish: the run ends by its limit.
		select {
		case <-c.Done():
		case <-time.After(30 * time.Second):
		}
	}
	c.Stop()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return c.Report()
}

func (c *Controller) inFlightFull() bool { return len(c.free) == 0 }

func userPaths(i int) (string, string) { return "GET", fmt.Sprintf("/users/%d", i%53) }

func TestControllerSeededRegressions(t *testing.T) {
	primary := httptest.NewServer(&service{})
	defer primary.Close()
	secondary := httptest.NewServer(&service{})
	defer secondary.Close()
	for _, tt := range []struct{ bug, field string }{
		{"value", "body.plan"}, {"missing", "body.name"}, {"type", "body.id"}, {"status", "status"}, {"header", "header.Cache-Control"},
	} {
		t.Run(tt.bug, func(t *testing.T) {
			candidate := httptest.NewServer(&service{bug: tt.bug})
			defer candidate.Close()
			c, err := NewController(Options{Requests: 500}, addr(candidate), addr(secondary))
			if err != nil {
				t.Fatal(err)
			}
			r := drive(t, c, primary.URL, 2000, userPaths)
			if r.Verdict != api.VerdictFail || r.Ended != "verdict" {
				t.Fatalf("verdict %s ended %q (%s), want fail ended by the verdict", r.Verdict, r.Ended, r.Reason)
			}
			var div []string
			for _, rt := range r.Routes {
				for _, f := range rt.Fields {
					if f.Divergent {
						div = append(div, rt.Route+" "+f.Path)
					}
				}
			}
			if !slices.Equal(div, []string{"GET /users/{id} " + tt.field}) {
				t.Errorf("divergent %q, want only %s", div, tt.field)
			}
			if r.Compared >= 500 {
				t.Errorf("fail took %d compared requests; want it early", r.Compared)
			}
		})
	}
}

// TestControllerOldVsOld mirrors 1,000+ requests to two more instances of
// the same service whose answers carry timestamps, random ids and random
// key order: no field may be divergent, and the verdict passes.
func TestControllerOldVsOld(t *testing.T) {
	primary := httptest.NewServer(&service{})
	defer primary.Close()
	secondary := httptest.NewServer(&service{})
	defer secondary.Close()
	candidate := httptest.NewServer(&service{})
	defer candidate.Close()
	c, err := NewController(Options{Requests: 1200}, addr(candidate), addr(secondary))
	if err != nil {
		t.Fatal(err)
	}
	r := drive(t, c, primary.URL, 5000, func(i int) (string, string) {
		if i%3 == 0 {
			return "GET", "/health"
		}
		return userPaths(i)
	})
	if r.Compared < 1000 || r.Ended != "requests" {
		t.Fatalf("compared %d, ended %q; want ≥ 1000 by the request limit", r.Compared, r.Ended)
	}
	for _, rt := range r.Routes {
		for _, f := range rt.Fields {
			if f.Divergent {
				t.Errorf("old vs old: %s %s divergent (%+v)", rt.Route, f.Path, f)
			}
		}
	}
	if r.Verdict != api.VerdictPass {
		t.Errorf("verdict %s (%s), want pass", r.Verdict, r.Reason)
	}
	noisy := 0
	for _, rt := range r.Routes {
		for _, f := range rt.Fields {
			if f.Noise > 0 {
				noisy++
			}
		}
	}
	if noisy < 2 {
		t.Errorf("only %d noisy fields measured; the service's timestamps and ids should be", noisy)
	}
}

func TestControllerMethods(t *testing.T) {
	primary := httptest.NewServer(&service{})
	defer primary.Close()
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
	for _, tt := range []struct {
		name   string
		opt    []string
		mirror []string
	}{
		{"default", nil, []string{"GET", "HEAD", "OPTIONS"}},
		{"widened", []string{"GET", "post"}, []string{"GET", "POST"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sec, cand := &service{}, &service{}
			secondary := httptest.NewServer(sec)
			defer secondary.Close()
			candidate := httptest.NewServer(cand)
			defer candidate.Close()
			c, _ := NewController(Options{Methods: tt.opt, Requests: 10 * len(tt.mirror)}, addr(candidate), addr(secondary))
			r := drive(t, c, primary.URL, 10*len(methods), func(i int) (string, string) { return methods[i%len(methods)], "/users/1" })
			for _, m := range methods {
				want := int64(0)
				if slices.Contains(tt.mirror, m) {
					want = 10
				}
				if got := cand.count(m); got != want {
					t.Errorf("candidate got %d %s, want %d", got, m, want)
				}
				if got := sec.count(m); got != want {
					t.Errorf("secondary got %d %s, want %d", got, m, want)
				}
			}
			if r.Eligible != uint64(10*len(tt.mirror)) {
				t.Errorf("eligible %d, want %d", r.Eligible, 10*len(tt.mirror))
			}
		})
	}
}

func TestControllerSampleAndSkip(t *testing.T) {
	lane := httptest.NewServer(&service{})
	defer lane.Close()
	c, _ := NewController(Options{Sample: 0.25, Queue: 100000}, addr(lane), addr(lane))
	i := 0
	c.random = func() float64 { i++; return float64(i%4) / 4 } // 1 in 4 below 0.25
	for range 400 {
		c.Observe(&Request{Gen: 1, Method: "GET", Path: "/"}, &differ.Answer{Status: 200})
	}
	c.Observe(&Request{Gen: 0, Method: "GET", Path: "/sealed"}, &differ.Answer{Status: 403})
	c.random = func() float64 { return 0 } // sampled: the next is skipped for its body
	c.Observe(&Request{Gen: 1, Method: "GET", Path: "/", Truncated: true}, &differ.Answer{Status: 200})
	r, a := FromProxy(&proxy.Request{Gen: 1, Method: "GET", Path: "/"}, nil, 64<<10)
	c.Observe(r, a) // the exchange failed: no primary answer to compare
	if c.requests.Load() != 403 || c.eligible.Load() != 401 || c.mirrored.Load() != 100 || c.skipped.Load() != 3 {
		t.Errorf("requests %d eligible %d mirrored %d skipped %d; want 403, 401, 100, 3",
			c.requests.Load(), c.eligible.Load(), c.mirrored.Load(), c.skipped.Load())
	}
}

// TestControllerStalledCandidate: a candidate that never answers holds at
// most Workers requests; everything else waits up to Queue and then is
// dropped, while every Observe returns at once and the secondary still
// answers. The run still ends on time and Run waits for its worker, in
// this process or in a worker process.
func TestControllerStalledCandidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cmd  *worker.Command
	}{{"goroutines", nil}, {"process", testWorker()}} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			var stalled atomic.Int64
			candidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				stalled.Add(1)
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			defer candidate.Close()
			defer close(release)
			sec := &service{}
			secondary := httptest.NewServer(sec)
			defer secondary.Close()
			c, _ := NewController(Options{Queue: 16, Workers: 4, Timeout: time.Hour, Worker: tt.cmd}, addr(candidate), addr(secondary))
			errc := make(chan error, 1)
			go func() { errc <- c.Run(t.Context()) }()
			const n = 5000
			for range n {
				c.Observe(&Request{Gen: 1, Method: "GET", Path: "/users/1"}, &differ.Answer{Status: 200})
			}
			// Every Observe has returned although the candidate answered nothing.
			if got := c.requests.Load(); got != n {
				t.Fatalf("observed %d, want %d", got, n)
			}
			if m, d := c.mirrored.Load(), c.dropped.Load(); m+d != n || m > 16+4 || d < n-20 {
				t.Errorf("mirrored %d dropped %d: want at most queue+workers = 20 mirrored, the rest dropped", m, d)
			}
			if c.compared.Load() != 0 {
				t.Errorf("compared %d with a candidate that never answers", c.compared.Load())
			}
			c.Stop()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if r := c.Report(); r.Ended != "stopped" {
				t.Errorf("ended %q (%s), want stopped", r.Ended, r.Reason)
			}
			if s := stalled.Load(); s > 4 {
				t.Errorf("candidate holds %d requests, want at most the 4 workers", s)
			}
			if sec.hits.Load() > 4 {
				t.Errorf("secondary got %d requests; workers should be stuck on the candidate", sec.hits.Load())
			}
		})
	}
}

// TestControllerDeadCandidate: a candidate that refuses connections shows up
// as a status difference (no answer), which is divergent.
func TestControllerDeadCandidate(t *testing.T) {
	primary := httptest.NewServer(&service{})
	defer primary.Close()
	secondary := httptest.NewServer(&service{})
	defer secondary.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := addr(dead)
	dead.Close()
	c, _ := NewController(Options{Requests: 300}, deadAddr, addr(secondary))
	r := drive(t, c, primary.URL, 1000, userPaths)
	if r.Verdict != api.VerdictFail {
		t.Fatalf("verdict %s, want fail", r.Verdict)
	}
	if ex := r.Routes[0].Examples; len(ex) == 0 || ex[0].Candidate.Error == "" {
		t.Errorf("want an example whose candidate answer is an error, got %+v", ex)
	}
}

func TestControllerForwardsRequest(t *testing.T) {
	got := make(chan *http.Request, 2)
	bodies := make(chan []byte, 2)
	lane := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer lane.Close()
	c, _ := NewController(Options{Methods: []string{"PUT"}, Requests: 1}, addr(lane), addr(lane))
	errc := make(chan error, 1)
	go func() { errc <- c.Run(t.Context()) }()
	c.Observe(&Request{Gen: 1, Method: "PUT", Path: "/a/b", RawQuery: "x=1&y=2",
		Header: http.Header{"X-Token": {"t"}, "Connection": {"close"}, "Accept-Encoding": {"gzip"}}, Body: []byte("payload")}, &differ.Answer{Status: 200})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		r, b := <-got, <-bodies
		if r.Method != "PUT" || r.URL.RequestURI() != "/a/b?x=1&y=2" || r.Header.Get("X-Token") != "t" || r.Header.Get("Accept-Encoding") != "gzip" || !bytes.Equal(b, []byte("payload")) {
			t.Errorf("lane got %s %s %v body %q", r.Method, r.URL.RequestURI(), r.Header, b)
		}
	}
}

func TestControllerEndsAfterDuration(t *testing.T) {
	lane := httptest.NewServer(&service{})
	defer lane.Close()
	c, _ := NewController(Options{For: 20 * time.Millisecond}, addr(lane), addr(lane))
	if err := c.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := c.Report(); r.Ended != "duration" || r.State != api.ShadowDone || r.Verdict != api.VerdictUndecided {
		t.Errorf("ended %q state %s verdict %s, want duration, done, undecided", r.Ended, r.State, r.Verdict)
	}
	// After the run, Observe takes nothing.
	c.Observe(&Request{Gen: 1, Method: "GET", Path: "/"}, &differ.Answer{Status: 200})
	if c.requests.Load() != 0 {
		t.Error("Observe counted a request after the run ended")
	}
}

// arrivals answers {"first":true} to the first of the two lanes a mirrored
// request reaches and {"first":false} to the second: a field that depends
// only on when a lane is asked, like a clock at coarse resolution.
type arrivals struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (a *arrivals) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq := r.Header.Get("X-Seq")
		a.mu.Lock()
		first := !a.seen[seq]
		a.seen[seq] = true
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"first":%t}`, first)
	})
}

// The lanes are asked in a random order per request, so a field that
// depends on who is asked first is noise for both and never tells the
// candidate from the secondary. (Asked in a fixed order, the lane asked
// second differs from the primary in nearly every request and the other
// almost never: a false divergence.)
func TestControllerLaneOrderIsRandom(t *testing.T) {
	a := &arrivals{seen: map[string]bool{}}
	candidate := httptest.NewServer(a.handler())
	defer candidate.Close()
	secondary := httptest.NewServer(a.handler())
	defer secondary.Close()
	const n = 300
	// Alpha tiny: with a random order the discordant pairs are fair coin
	// flips, so a divergence here means the order is not random.
	c, err := NewController(Options{Requests: n, Queue: n, Differ: differ.Options{Alpha: 1e-9}}, addr(candidate), addr(secondary))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Run(t.Context()) }()
	for i := range n {
		c.Observe(&Request{Gen: 1, Method: "GET", Path: "/x", Header: http.Header{"X-Seq": {strconv.Itoa(i)}}},
			&differ.Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"first":true}`)})
	}
	<-c.Done()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	r := c.Report()
	if r.Compared != n || len(r.Routes) != 1 {
		t.Fatalf("compared %d of %d, routes %d", r.Compared, n, len(r.Routes))
	}
	for _, f := range r.Routes[0].Fields {
		if f.Path != "body.first" {
			t.Errorf("unexpected field %+v", f)
			continue
		}
		t.Logf("candidate asked second in %d requests, secondary in %d", f.CandidateOnly, f.SecondaryOnly)
		if f.Divergent || f.CandidateOnly < n/5 || f.SecondaryOnly < n/5 {
			t.Errorf("body.first: candidate-only %d, secondary-only %d, divergent %v; want each lane second in about half the requests",
				f.CandidateOnly, f.SecondaryOnly, f.Divergent)
		}
	}
}

// A worker process that dies ends the run, and the report says why; the
// comparisons made before stand.
func TestControllerWorkerDies(t *testing.T) {
	primary := httptest.NewServer(&service{})
	defer primary.Close()
	lane := httptest.NewServer(&service{})
	defer lane.Close()
	c, _ := NewController(Options{Worker: testWorker()}, addr(lane), addr(lane))
	errc := make(chan error, 1)
	go func() { errc <- c.Run(t.Context()) }()
	req, ans := fetch(t, &http.Client{}, primary.URL, "GET", "/users/1")
	c.Observe(req, ans)
	awaitOutcome(c)
	if err := syscall.Kill(int(c.workerPid.Load()), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	r := c.Report()
	if r.Ended != "worker exited" || !strings.Contains(r.Reason, "shadow worker exited during the run") || !strings.Contains(r.Reason, "killed") ||
		r.Compared != 1 || r.Verdict != api.VerdictUndecided {
		t.Errorf("ended %q reason %q compared %d verdict %s; want the worker's death named, 1 compared, undecided", r.Ended, r.Reason, r.Compared, r.Verdict)
	}
}

// awaitOutcome polls until c has recorded an outcome. It sleeps rather than
// spins: a spinning test would keep an idle-priority worker off the CPU.
func awaitOutcome(c *Controller) {
	for c.compared.Load() == 0 && c.laneErrors.Load() == 0 {
		time.Sleep(time.Millisecond) // polling a counter; the worker is another process
	}
}
