package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sealHook is an Inspect hook whose rule can be switched on while a
// request is in flight, as self-healing installs a seal rule after a crash.
type sealHook struct {
	sealed atomic.Bool
	mu     sync.Mutex
	seen   []*Request // every call, in order
	first  chan struct{}
	once   sync.Once
}

func newSealHook() *sealHook { return &sealHook{first: make(chan struct{})} }

func (h *sealHook) inspect(r *Request) *Answer {
	h.mu.Lock()
	h.seen = append(h.seen, r)
	h.mu.Unlock()
	h.once.Do(func() { close(h.first) })
	if h.sealed.Load() {
		return &Answer{Status: http.StatusForbidden, Header: http.Header{"X-Sealed": {"r1"}}, Body: []byte("sealed\n")}
	}
	return nil
}

func (h *sealHook) calls() []*Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Request(nil), h.seen...)
}

// counting wraps a handler and counts the requests it saw.
func counting(n *atomic.Int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	})
}

// TestInspectBeforeRetry: a GET whose backend dies mid-request is retried
// elsewhere; when Inspect starts answering between the first attempt and
// the retry (a seal rule installed for that crash), the retry is answered
// by Inspect and the second backend never sees the request.
func TestInspectBeforeRetry(t *testing.T) {
	tests := []struct {
		name string
		// route is what happens as the first backend dies: where the
		// retry can go (fallback, new primary, replacement after a crash).
		route      string
		seal       bool // Inspect answers from the moment the first backend dies
		lateHook   bool // Inspect is installed only then (none at admission)
		wantStatus int
		wantSecond int64 // requests the second backend saw
		wantCalls  int   // Inspect calls
	}{
		{"fallback/sealed", "fallback", true, false, 403, 0, 2},
		{"fallback/not-sealed", "fallback", false, false, 200, 1, 2},
		{"new-primary/sealed", "primary", true, false, 403, 0, 2},
		{"replacement/sealed", "replacement", true, false, 403, 0, 2},
		{"replacement/hook-installed-late", "replacement", true, true, 403, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Options{})
			hook := newSealHook()
			var firstHits, secondHits atomic.Int64
			_, second := backendServer(t, 2, counting(&secondHits, echoHandler(2)))
			var first *Backend
			_, first = backendServer(t, 1, counting(&firstHits, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// The rule is in place before the proxy can see the
				// connection break, so before any retry.
				if tt.lateHook {
					p.SetHooks(Hooks{Inspect: hook.inspect, InspectBody: true})
				}
				hook.sealed.Store(tt.seal)
				switch tt.route {
				case "primary":
					p.SetPrimary(second)
				case "replacement":
					p.SetPrimary(nil)
				}
				if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
					c.Close()
				}
				if tt.route == "replacement" {
					go func() {
						// What the supervisor does after the exit.
						first.Close()
						p.SetPrimary(second)
					}()
				}
			})))
			p.SetPrimary(first)
			if tt.route == "fallback" {
				p.SetFallback(second)
			}
			if !tt.lateHook {
				p.SetHooks(Hooks{Inspect: hook.inspect, InspectBody: true})
			}
			base := startProxy(t, p)

			resp, err := newClient().Get(base + "/boom?x=1")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if tt.seal && (string(body) != "sealed\n" || resp.Header.Get("X-Sealed") != "r1") {
				t.Fatalf("client got %q, X-Sealed %q; want Inspect's answer", body, resp.Header.Get("X-Sealed"))
			}
			if !tt.seal && resp.Header.Get("X-Gen") != "2" {
				t.Fatalf("answered by gen %q, want the retry on gen 2", resp.Header.Get("X-Gen"))
			}
			if n := firstHits.Load(); n != 1 {
				t.Errorf("first backend saw %d requests, want 1", n)
			}
			if n := secondHits.Load(); n != tt.wantSecond {
				t.Errorf("second backend saw %d requests, want %d", n, tt.wantSecond)
			}
			calls := hook.calls()
			if len(calls) != tt.wantCalls {
				t.Fatalf("Inspect called %d times, want %d", len(calls), tt.wantCalls)
			}
			for _, r := range calls {
				if r != calls[0] || r.Path != "/boom" || r.RawQuery != "x=1" || r.Method != "GET" {
					t.Errorf("Inspect saw %+v, want the same snapshot of GET /boom?x=1 each time", r)
				}
			}
			st := p.Stats()
			wantBlocked, wantRetries := uint64(0), uint64(1)
			if tt.seal {
				wantBlocked, wantRetries = 1, 0
			}
			if st.Inspected != 1 || st.Blocked != wantBlocked || st.Retries != wantRetries {
				t.Errorf("stats %+v, want 1 inspected, %d blocked, %d retries", st, wantBlocked, wantRetries)
			}
		})
	}
}

// TestInspectAfterWait: a request that had to wait for a primary meets
// Inspect again once one is set, with the snapshot taken at admission (the
// body is not read twice).
func TestInspectAfterWait(t *testing.T) {
	tests := []struct {
		name, method, body string
		seal               bool
		wantStatus         int
		wantHits           int64
	}{
		{"get/sealed", "GET", "", true, 403, 0},
		{"post/sealed", "POST", "payload", true, 403, 0},
		{"post/not-sealed", "POST", "payload", false, 200, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Options{WaitForBackend: 20 * time.Second})
			hook := newSealHook()
			p.SetHooks(Hooks{Inspect: hook.inspect, InspectBody: true})
			var hits atomic.Int64
			_, b := backendServer(t, 2, counting(&hits, echoHandler(2)))
			base := startProxy(t, p)

			type result struct {
				status int
				body   string
				err    error
			}
			res := make(chan result, 1)
			go func() {
				req, _ := http.NewRequest(tt.method, base+"/w", strings.NewReader(tt.body))
				resp, err := newClient().Do(req)
				if err != nil {
					res <- result{err: err}
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				res <- result{resp.StatusCode, string(got), err}
			}()
			<-hook.first // admitted, and seen by Inspect with no rule yet
			for p.waiting.Load() == 0 {
				time.Sleep(time.Millisecond) // until it waits for a primary
			}
			hook.sealed.Store(tt.seal)
			p.SetPrimary(b)
			r := <-res
			if r.err != nil || r.status != tt.wantStatus {
				t.Fatalf("got %+v, want status %d", r, tt.wantStatus)
			}
			if tt.seal && r.body != "sealed\n" {
				t.Fatalf("body %q, want Inspect's answer", r.body)
			}
			if !tt.seal && r.body != tt.body {
				t.Fatalf("body %q, want the echo %q", r.body, tt.body)
			}
			if n := hits.Load(); n != tt.wantHits {
				t.Errorf("backend saw %d requests, want %d", n, tt.wantHits)
			}
			calls := hook.calls()
			if len(calls) != 2 {
				t.Fatalf("Inspect called %d times, want 2 (admission and after the wait)", len(calls))
			}
			if calls[1] != calls[0] || string(calls[1].Body) != tt.body || calls[1].Method != tt.method {
				t.Errorf("second Inspect saw %+v, want the admission snapshot with body %q", calls[1], tt.body)
			}
		})
	}
}
