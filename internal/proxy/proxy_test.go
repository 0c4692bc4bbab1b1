package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startProxy serves p on a fresh loopback listener and returns its base URL.
func startProxy(t testing.TB, p *Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// backendServer starts an httptest server and a Backend for it.
func backendServer(t *testing.T, gen int, h http.Handler) (*httptest.Server, *Backend) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	b := NewBackend(gen, srv.Listener.Addr().String())
	t.Cleanup(b.Close)
	return srv, b
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 20 * time.Second}
}

func echoHandler(gen int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d) // a request still in flight when a drain starts
		}
		w.Header().Set("X-Gen", fmt.Sprint(gen))
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-URI", r.RequestURI)
		w.Write(body)
	})
}

func TestProxyBasic(t *testing.T) {
	_, b := backendServer(t, 1, echoHandler(1))
	p := New(Options{})
	p.SetPrimary(b)
	base := startProxy(t, p)
	c := newClient()

	tests := []struct {
		name, method, path, body string
	}{
		{"get", "GET", "/a/b?x=1&y=%20", ""},
		{"post", "POST", "/post", "hello world"},
		{"put-large", "PUT", "/big", strings.Repeat("x", 1<<20)},
		{"delete", "DELETE", "/d", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, strings.NewReader(tt.body))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(got) != tt.body {
				t.Fatalf("status %d, body %d bytes, want 200 and %d bytes", resp.StatusCode, len(got), len(tt.body))
			}
			if g := resp.Header.Get("X-URI"); g != tt.path {
				t.Errorf("backend saw URI %q, want %q", g, tt.path)
			}
			if g := resp.Header.Get("X-XFF"); g != "127.0.0.1" {
				t.Errorf("X-Forwarded-For %q, want 127.0.0.1", g)
			}
			if g := resp.Header.Get("X-Gen"); g != "1" {
				t.Errorf("gen %q", g)
			}
		})
	}
	st := b.Stats()
	if st.Requests != uint64(len(tests)) || st.InFlight != 0 || st.Failures != 0 {
		t.Errorf("backend stats %+v", st)
	}
	if ps := p.Stats(); ps.Requests != uint64(len(tests)) || ps.Failures != 0 {
		t.Errorf("proxy stats %+v", ps)
	}
}

func TestNoPrimaryWaits(t *testing.T) {
	_, b := backendServer(t, 1, echoHandler(1))
	p := New(Options{WaitForBackend: 10 * time.Second})
	base := startProxy(t, p)
	c := newClient()

	started := make(chan struct{})
	type result struct {
		status int
		gen    string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		close(started)
		resp, err := c.Post(base+"/x", "text/plain", strings.NewReader("body"))
		if err != nil {
			res <- result{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res <- result{status: resp.StatusCode, gen: resp.Header.Get("X-Gen")}
	}()
	<-started
	// Wait until the proxy has the request, then give it a primary.
	for p.Stats().Requests == 0 {
		time.Sleep(time.Millisecond)
	}
	p.SetPrimary(b)
	r := <-res
	if r.err != nil || r.status != 200 || r.gen != "1" {
		t.Fatalf("got %+v, want 200 from gen 1", r)
	}

	// With no primary and a short wait, a request is answered 503.
	p2 := New(Options{WaitForBackend: 50 * time.Millisecond})
	base2 := startProxy(t, p2)
	resp, err := c.Get(base2 + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if p2.Stats().Failures != 1 {
		t.Errorf("failures %d, want 1", p2.Stats().Failures)
	}
}

// TestSwitchUnderLoad swaps primaries repeatedly while clients send GETs
// and POSTs over keep-alive and fresh connections; the supervisor's drain
// sequence (SetPrimary → Idle → Close) must lose nothing.
func TestSwitchUnderLoad(t *testing.T) {
	p := New(Options{})
	base := startProxy(t, p)
	var backs []*Backend
	for g := 1; g <= 6; g++ {
		_, b := backendServer(t, g, echoHandler(g))
		backs = append(backs, b)
	}
	p.SetPrimary(backs[0])

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: i%4 == 3}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for n := 0; ctx.Err() == nil; n++ {
				body := fmt.Sprintf("client %d req %d", i, n)
				var resp *http.Response
				var err error
				if n%2 == 0 {
					resp, err = c.Post(base+"/p?sleep=3ms", "text/plain", strings.NewReader(body))
				} else {
					body = ""
					resp, err = c.Get(base + "/g")
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(got) != body {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d err %v body %q want %q", resp.StatusCode, err, got, body))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for _, nb := range backs[1:] {
		// Let some traffic reach the current primary first.
		for start := ok.Load(); ok.Load() < start+50; {
			time.Sleep(time.Millisecond)
		}
		old := p.primary.Load()
		p.SetPrimary(nb)
		ictx, icancel := context.WithTimeout(t.Context(), 10*time.Second)
		if err := old.Idle(ictx); err != nil {
			t.Fatalf("idle: %v", err)
		}
		icancel()
		old.Close()
	}
	for start := ok.Load(); ok.Load() < start+50; {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d failed requests of %d; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	for _, b := range backs {
		if b.Stats().Requests == 0 {
			t.Errorf("gen %d served nothing", b.Gen())
		}
	}
	t.Logf("%d requests, 0 failed, %d retries", ok.Load(), p.Stats().Retries)
}

func TestFallbackAndRetryRules(t *testing.T) {
	var primaryHits atomic.Int64
	_, bad := backendServer(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		primaryHits.Add(1)
		io.Copy(io.Discard, r.Body)
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	_, good := backendServer(t, 1, echoHandler(1))
	p := New(Options{})
	p.SetPrimary(bad)
	p.SetFallback(good)
	base := startProxy(t, p)
	c := newClient()

	tests := []struct {
		method     string
		wantStatus int
		wantGen    string
	}{
		{"GET", 200, "1"},
		{"HEAD", 200, "1"},
		{"PUT", 200, "1"}, // small body: held whole, so retried
		{"POST", 500, ""}, // never retried
		{"PATCH", 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			var body io.Reader
			if tt.method == "PUT" || tt.method == "POST" || tt.method == "PATCH" {
				body = strings.NewReader("payload")
			}
			req, _ := http.NewRequest(tt.method, base+"/f", body)
			before := primaryHits.Load()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("X-Gen") != tt.wantGen {
				t.Fatalf("status %d gen %q, want %d gen %q", resp.StatusCode, resp.Header.Get("X-Gen"), tt.wantStatus, tt.wantGen)
			}
			if primaryHits.Load() != before+1 {
				t.Errorf("primary hit %d times, want once", primaryHits.Load()-before)
			}
		})
	}
	if st := p.Stats(); st.Fallbacks != 3 || st.Retries != 3 {
		t.Errorf("stats %+v, want 3 retries and 3 fallbacks", st)
	}

	// Nothing listening: nothing was sent, so any request, POST included,
	// is re-routed to the fallback.
	dead := NewBackend(3, closedAddr(t))
	p.SetPrimary(dead)
	for _, m := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(m, base+"/g", strings.NewReader("x"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Gen") != "1" {
			t.Fatalf("%s on dead primary: status %d gen %q", m, resp.StatusCode, resp.Header.Get("X-Gen"))
		}
	}

	// The request reached the backend, which died without answering: a GET
	// is retried on the fallback, a POST is answered 502 (never retried).
	var hangups atomic.Int64
	_, crash := backendServer(t, 4, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangups.Add(1)
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	p.SetPrimary(crash)
	fails := p.Stats().Failures
	for _, tt := range []struct {
		method string
		status int
	}{{"GET", 200}, {"POST", 502}, {"PUT", 200}} {
		req, _ := http.NewRequest(tt.method, base+"/c", strings.NewReader("body"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Fatalf("%s on crashing primary: status %d, want %d", tt.method, resp.StatusCode, tt.status)
		}
	}
	if got := p.Stats().Failures - fails; got != 1 {
		t.Errorf("failures %d, want 1", got)
	}
	if hangups.Load() != 3 {
		t.Errorf("crashing backend saw %d requests, want 3 (no retry on it)", hangups.Load())
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestInFlightIdleAndHooks(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	_, b := backendServer(t, 7, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	p := New(Options{BodyCap: 8})
	p.SetPrimary(b)
	observed := make(chan [2]any, 4)
	p.SetHooks(Hooks{
		Inspect: func(r *Request) *Answer {
			if strings.Contains(string(r.Body), "evil") {
				return &Answer{Status: 403, Header: http.Header{"X-Sealed": {"r1"}}, Body: []byte("sealed\n")}
			}
			return nil
		},
		InspectBody: true,
		Observe: func(r *Request, resp *Response) {
			observed <- [2]any{r, resp}
		},
		ObserveResponse: true,
	})
	base := startProxy(t, p)
	c := newClient()

	done := make(chan error, 1)
	go func() {
		resp, err := c.Post(base+"/slow?q=1", "text/plain", strings.NewReader("0123456789abcdef"))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	<-arrived
	fl := b.InFlight()
	if len(fl) != 1 {
		t.Fatalf("in flight %d, want 1", len(fl))
	}
	r := fl[0]
	if r.Method != "POST" || r.Path != "/slow" || r.RawQuery != "q=1" || string(r.Body) != "01234567" || r.BodyLen != 16 || r.Gen != 7 {
		t.Fatalf("in-flight snapshot %+v", r)
	}
	ictx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	if err := b.Idle(ictx); err == nil {
		t.Fatal("Idle returned with a request in flight")
	}
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := b.Idle(t.Context()); err != nil {
		t.Fatal(err)
	}
	ob := <-observed
	oreq, oresp := ob[0].(*Request), ob[1].(*Response)
	if oreq.Path != "/slow" || oresp.Status != 200 || string(oresp.Body) != `{"ok":tr` || oresp.BodyLen != 11 {
		t.Fatalf("observed %+v %+v", oreq, oresp)
	}

	// Inspect answers without reaching the backend.
	before := b.Stats().Requests
	resp, err := c.Post(base+"/x", "text/plain", strings.NewReader("an evil body"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || string(got) != "sealed\n" || resp.Header.Get("X-Sealed") != "r1" {
		t.Fatalf("inspect answer: %d %q", resp.StatusCode, got)
	}
	if b.Stats().Requests != before {
		t.Fatal("blocked request reached the backend")
	}
	if st := p.Stats(); st.Blocked != 1 || st.Inspected != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestCloseReroutes(t *testing.T) {
	_, b1 := backendServer(t, 1, echoHandler(1))
	_, b2 := backendServer(t, 2, echoHandler(2))
	p := New(Options{})
	p.SetPrimary(b1)
	base := startProxy(t, p)
	b1.Close()
	// b1 is closed but still primary: a POST must not fail, it waits for
	// a primary that accepts work.
	go func() {
		for p.Stats().Requests == 0 {
			time.Sleep(time.Millisecond)
		}
		p.SetPrimary(b2)
	}()
	resp, err := newClient().Post(base+"/", "text/plain", bytes.NewReader([]byte("z")))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Gen") != "2" {
		t.Fatalf("status %d gen %q", resp.StatusCode, resp.Header.Get("X-Gen"))
	}
}

// TestCrashReplacement: the primary dies with requests in flight and the
// supervisor replaces it (SetPrimary(nil), Close, then SetPrimary(new)):
// an idempotent request moves to the replacement, a POST fails.
func TestCrashReplacement(t *testing.T) {
	p := New(Options{})
	_, repl := backendServer(t, 2, echoHandler(2))
	var crashed *Backend
	var once sync.Once
	suspects := make(chan []Request, 1)
	_, crashed = backendServer(t, 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		once.Do(func() {
			go func() {
				// What the supervisor does when it sees the exit.
				p.SetPrimary(nil)
				suspects <- crashed.InFlight()
				crashed.Close()
				p.SetPrimary(repl)
			}()
		})
	}))
	p.SetPrimary(crashed)
	base := startProxy(t, p)
	resp, err := newClient().Get(base + "/x")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Gen") != "2" {
		t.Fatalf("GET: status %d gen %q, want 200 from the replacement", resp.StatusCode, resp.Header.Get("X-Gen"))
	}
	if st := p.Stats(); st.Retries != 1 || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Whether the supervisor looks before or after the proxy saw the
	// connection break, the request is a suspect.
	if s := <-suspects; len(s) != 1 || s[0].Path != "/x" || s[0].Gen != 1 {
		t.Fatalf("suspects %+v", s)
	}

	// After the fact too: a POST killed by its backend stays listed.
	_, killer := backendServer(t, 3, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	}))
	p.SetPrimary(killer)
	resp, err = newClient().Post(base+"/kill?q=1", "application/json", strings.NewReader(`{"boom":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("POST status %d, want 502", resp.StatusCode)
	}
	s := killer.InFlight()
	if len(s) != 1 || s[0].Method != "POST" || s[0].RawQuery != "q=1" || string(s[0].Body) != `{"boom":true}` {
		t.Fatalf("after the 502, InFlight = %+v", s)
	}
	if killer.Stats().InFlight != 0 {
		t.Fatalf("stats count %d in flight, want 0", killer.Stats().InFlight)
	}
}

// TestObserveAfterAnswer: Observe runs only once the client has its whole
// answer; an Observe that has not returned yet does not hold it back.
func TestObserveAfterAnswer(t *testing.T) {
	_, b := backendServer(t, 1, echoHandler(1))
	p := New(Options{BodyCap: 4})
	p.SetPrimary(b)
	gate := make(chan struct{})
	seen := make(chan *Request, 1)
	p.SetHooks(Hooks{Observe: func(r *Request, resp *Response) {
		seen <- r
		<-gate
	}})
	base := startProxy(t, p)
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		// A chunked (unknown length) body, longer than BodyCap.
		resp, err := newClient().Post(base+"/o", "text/plain", io.MultiReader(strings.NewReader("streamed-body")))
		if err != nil {
			res <- result{err: err}
			return
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{string(got), err}
	}()
	r := <-seen // Observe is now blocked
	select {
	case got := <-res:
		if got.err != nil || got.body != "streamed-body" {
			t.Fatalf("answer %+v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client's answer waited for Observe")
	}
	close(gate)
	if string(r.Body) != "stre" || r.BodyLen != int64(len("streamed-body")) || r.Method != "POST" {
		t.Fatalf("observed request %+v", r)
	}
}

// TestUpstreamReuse: sequential requests over one client connection use
// one upstream connection, whatever the framing of the answers.
func TestUpstreamReuse(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Query().Get("chunked") != "" {
			w.Write([]byte("part1"))
			w.(http.Flusher).Flush()
		}
		w.Write([]byte("done"))
	}))
	var conns atomic.Int64
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	b := NewBackend(1, srv.Listener.Addr().String())
	p := New(Options{})
	p.SetPrimary(b)
	base := startProxy(t, p)
	c := newClient()
	for i := range 50 {
		url := base + "/r"
		if i%2 == 1 {
			url += "?chunked=1"
		}
		var resp *http.Response
		var err error
		if i%3 == 0 {
			resp, err = c.Post(url, "text/plain", strings.NewReader("payload"))
		} else {
			resp, err = c.Get(url)
		}
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections for 50 sequential requests, want 1", n)
	}
}

// TestObserveResponseCopy: the answer's header and body reach Observe only
// when a hook asks for them; otherwise the proxy copies nothing of it.
func TestObserveResponseCopy(t *testing.T) {
	for _, copyResp := range []bool{false, true} {
		t.Run(fmt.Sprint("ObserveResponse=", copyResp), func(t *testing.T) {
			_, b := backendServer(t, 1, echoHandler(1))
			p := New(Options{BodyCap: 4})
			p.SetPrimary(b)
			got := make(chan *Response, 1)
			p.SetHooks(Compose(
				Hooks{Observe: func(*Request, *Response) {}},
				Hooks{Observe: func(_ *Request, r *Response) { got <- r }, ObserveResponse: copyResp},
			))
			resp, err := newClient().Post(startProxy(t, p)+"/o", "text/plain", strings.NewReader("answer-body"))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			r := <-got
			if r.Status != 200 || r.BodyLen == 0 {
				t.Fatalf("observed %+v, want status and length", r)
			}
			if copied := r.Header != nil && len(r.Body) > 0; copied != copyResp {
				t.Errorf("header and body copied = %v, want %v (%+v)", copied, copyResp, r)
			}
		})
	}
}

// TestInFlightKeepsManyBrokenOff: a crash breaks every connection to the
// generation at once, and self-healing takes its suspects from InFlight;
// more requests than a generation usually serves at a time (here 300,
// sequential POSTs each killed by the backend) all stay listed, within
// lostTTL (the backend's clock stands still, however slow the machine),
// unless their bodies would hold more than maxLostBytes: then the newest
// are kept.
func TestInFlightKeepsManyBrokenOff(t *testing.T) {
	tests := []struct {
		name    string
		body    int
		wantAll bool
	}{
		{"small bodies", 1, true},
		{"large bodies", 60 << 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, killer := backendServer(t, 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
					c.Close()
				}
			}))
			frozen := time.Now()
			killer.now = func() time.Time { return frozen }
			p := New(Options{})
			p.SetPrimary(killer)
			base := startProxy(t, p)
			c := newClient()
			const n = 300
			body := strings.Repeat("x", tt.body)
			for i := range n {
				resp, err := c.Post(fmt.Sprintf("%s/kill?i=%d", base, i), "text/plain", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadGateway {
					t.Fatalf("POST %d: status %d, want 502", i, resp.StatusCode)
				}
			}
			seen, mem := map[string]bool{}, 0
			for _, r := range killer.InFlight() {
				seen[r.RawQuery] = true
				mem += lostSize(&r)
			}
			if mem > maxLostBytes {
				t.Fatalf("listed requests hold %d bytes, more than %d", mem, maxLostBytes)
			}
			if !seen[fmt.Sprintf("i=%d", n-1)] {
				t.Fatal("the newest request is not listed")
			}
			if all := len(seen) == n; all != tt.wantAll {
				t.Fatalf("%d of %d listed, want all: %v", len(seen), n, tt.wantAll)
			}
			// Once lostTTL has passed, they are forgotten.
			frozen = frozen.Add(lostTTL + time.Second)
			if fl := killer.InFlight(); len(fl) != 0 {
				t.Fatalf("%d requests still listed after lostTTL", len(fl))
			}
		})
	}
}
