package heal

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/guard"
	"github.com/graftdev/graft/internal/proxy"
)

// TestHooksConcurrent runs the proxy hooks from several goroutines, with
// ids that collide in the tracker's table and crash attributions in between,
// as the proxy and the supervisor do (run it with -race): every request
// that completed leaves the tracker, and the ones left unfinished are the
// next crash's suspects.
func TestHooksConcurrent(t *testing.T) {
	h, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := &Attached{Healer: h, Guards: guard.New(guard.Options{})}
	const workers, perWorker = 4, 3000
	var wg sync.WaitGroup
	unfinished := make([][]uint64, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				// Worker w uses ids w, w+workers·trackerSlots/4, ...: they
				// share slots, so the overflow map is used too.
				id := uint64(w) + uint64(i)*trackerSlots/4 + 1
				r := &proxy.Request{ID: id, Method: "GET", Path: fmt.Sprintf("/items/%d", i%50), Header: http.Header{"Accept": {"*/*"}}}
				if ans := a.Inspect(r); ans != nil {
					t.Errorf("request %d answered %d", id, ans.Status)
					return
				}
				if i%500 == 7 {
					unfinished[w] = append(unfinished[w], id) // its client went away
					continue
				}
				out := *r
				out.Gen = 1
				a.Observe(&out, &proxy.Response{Status: http.StatusOK})
			}
		})
	}
	wg.Go(func() {
		// The crash analysis' scans of the tracker (Crash itself would
		// install rules from these harmless requests), for a crash before
		// any of them began: nothing is blamed, so all stay tracked.
		for range 5 {
			h.flights.suspects(h.now().Add(-time.Hour))
		}
	})
	wg.Wait()
	want := map[uint64]bool{}
	for _, ids := range unfinished {
		for _, id := range ids {
			want[id] = true
		}
	}
	got := map[uint64]bool{}
	for _, r := range h.flights.suspects(h.now()) {
		got[r.ID] = true
		if !want[r.ID] {
			t.Errorf("request %d completed but is still tracked", r.ID)
		}
	}
	for id := range want {
		if !got[id] {
			t.Errorf("unfinished request %d is not tracked", id)
		}
	}
	if n := h.flights.nOver.Load(); n > int64(len(want)) {
		t.Errorf("overflow holds %d requests, only %d are unfinished", n, len(want))
	}
	if n := h.benign.len(); n != maxSampled {
		t.Errorf("benign sample holds %d, want %d", n, maxSampled)
	}
}

// TestLazyHooksThroughProxy runs self-healing's Admit and Complete behind
// a real proxy: with nothing to match, requests pass uncopied and
// untracked and a route's benign requests are sampled at most one per
// sampleGap; once a rule is installed or a guard is on, every request is
// copied and matched again.
func TestLazyHooksThroughProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	h, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := &Attached{Healer: h, Guards: guard.New(guard.Options{})}
	h.benign.gap = int64(time.Hour) // one request per route, however slow the machine
	p := proxy.New(proxy.Options{})
	b := proxy.NewBackend(1, backend.Listener.Addr().String())
	t.Cleanup(b.Close)
	p.SetPrimary(b)
	p.SetHooks(a.Hooks())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
		<-served
	})
	// One connection: the proxy reads its next request only after
	// Complete has returned for the last, so each step sees the last one's
	// effect on the sample.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	send := func(method, target, body string) (int, string) {
		t.Helper()
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n%s", method, target, len(body), body)
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Graft-Rule")
	}

	// The sync requests' route is sampled once, here; the proxy reads the
	// next request only after this one's Complete returned.
	if status, _ := send("OPTIONS", "/sync", ""); status != 200 {
		t.Fatalf("sync request: %d", status)
	}
	steps := []struct {
		name       string
		setup      func(t *testing.T)
		method     string
		target     string
		body       string
		wantStatus int
		wantRule   string
		wantSample int // requests in the benign sample afterwards
	}{
		{name: "first of a route is sampled", method: "GET", target: "/items/1", wantStatus: 200, wantSample: 1},
		{name: "same route within the gap is not", method: "GET", target: "/items/2", wantStatus: 200, wantSample: 1},
		{name: "another route is", method: "POST", target: "/items/3", body: `{"a":1}`, wantStatus: 200, wantSample: 2},
		{
			name: "a rule matches", method: "POST", target: "/orders/9", body: `{"tags":null}`, wantStatus: 503, wantRule: "rule", wantSample: 2,
			setup: func(t *testing.T) {
				if _, _, err := h.Add(api.SealAddRequest{Match: "POST /orders/{} json.tags=null"}); err != nil {
					t.Fatal(err)
				}
			},
		},
		{name: "with a rule, others pass", method: "POST", target: "/orders/9", body: `{"tags":[]}`, wantStatus: 200, wantSample: 3},
		{
			name: "a guard matches", method: "GET", target: "/admin/x", wantStatus: 400, wantRule: "guard.path_pattern", wantSample: 3,
			setup: func(t *testing.T) {
				for _, r := range h.List() {
					if _, err := h.Remove(r.ID); err != nil {
						t.Fatal(err)
					}
				}
				if err := a.Guards.Set("guard.path_pattern", true, map[string]string{"deny": "^/admin"}); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.setup != nil {
				st.setup(t)
			}
			status, rule := send(st.method, st.target, st.body)
			if status != st.wantStatus {
				t.Fatalf("status %d, want %d", status, st.wantStatus)
			}
			switch {
			case st.wantRule == "rule" && !strings.HasPrefix(rule, "s"), st.wantRule != "rule" && rule != st.wantRule:
				t.Fatalf("X-Graft-Rule %q, want %q", rule, st.wantRule)
			}
			// Complete runs after the answer is written; the next request
			// on the connection is read after it returned (and adds
			// nothing: its route was sampled within the gap).
			if status, _ := send("OPTIONS", "/sync", ""); status != 200 {
				t.Fatalf("sync request: %d", status)
			}
			if n := h.benign.len(); n != st.wantSample+1 {
				t.Fatalf("sample holds %d, want %d (+1 for the sync requests' route)", n, st.wantSample+1)
			}
		})
	}
	// Every request that was tracked (while a rule or guard was on) left
	// the tracker when it completed or was answered. The last sync request
	// was tracked too (the guard is on) and leaves at its Complete, which
	// runs after its answer: switch the guard off, so that the next request
	// is not tracked, and send it on the same connection, which is read
	// only once that Complete returned.
	if err := a.Guards.Set("guard.path_pattern", false, nil); err != nil {
		t.Fatal(err)
	}
	if status, _ := send("OPTIONS", "/sync", ""); status != 200 {
		t.Fatalf("sync request: %d", status)
	}
	if n := len(h.flights.suspects(time.Now())); n != 0 {
		t.Fatalf("%d requests still tracked", n)
	}
}
