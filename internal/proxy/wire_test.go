package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graftdev/graft/internal/proxy/http1"
)

// rawProxy starts a proxy in front of h and returns the proxy's address.
func rawProxy(t *testing.T, h http.Handler) (string, *Proxy, *Backend) {
	t.Helper()
	_, b := backendServer(t, 1, h)
	p := New(Options{})
	p.SetPrimary(b)
	base := startProxy(t, p)
	return strings.TrimPrefix(base, "http://"), p, b
}

// roundTrip writes raw bytes on a fresh connection and reads responses
// with net/http's parser.
func dialRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// headersSeen answers with the request's headers, one "Name: value" a line.
var headersSeen = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var sb strings.Builder
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(&sb, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintf(&sb, "Host: %s\nBody: %s\nTE: %v\n", r.Host, body, r.TransferEncoding)
	w.Header().Set("Connection", "X-Resp-Hop")
	w.Header().Set("X-Resp-Hop", "secret")
	w.Header().Set("Keep-Alive", "timeout=5")
	w.Header().Set("X-Resp-End", "kept")
	io.WriteString(w, sb.String())
})

func TestRawRequests(t *testing.T) {
	addr, _, _ := rawProxy(t, headersSeen)
	tests := []struct {
		name     string
		req      string
		status   int
		contains []string
		absent   []string
		closed   bool // the proxy closes the connection after answering
	}{
		{
			name:     "hop-by-hop dropped",
			req:      "GET /h HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=1\r\nProxy-Authorization: Basic eA==\r\nTE: trailers\r\nX-End: 2\r\n\r\n",
			status:   200,
			contains: []string{"X-End: 2", "Host: example.test", "X-Forwarded-For: 127.0.0.1"},
			absent:   []string{"X-Hop", "Proxy-Authorization", "Keep-Alive", "Te:"},
		},
		{
			name:     "xff appended",
			req:      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n\r\n",
			status:   200,
			contains: []string{"X-Forwarded-For: 10.0.0.1, 10.0.0.2, 127.0.0.1"},
		},
		{
			name:     "chunked body",
			req:      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
			status:   200,
			contains: []string{"Body: hello world"},
		},
		{
			name:     "content-length body",
			req:      "PUT /c HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
			status:   200,
			contains: []string{"Body: abc"},
		},
		{
			name:   "h2c upgrade refused",
			req:    "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
			status: 200,
			absent: []string{"Upgrade", "Http2-Settings"},
		},
		{name: "bare LF", req: "GET / HTTP/1.1\nHost: a\n\n", status: 400, closed: true},
		{name: "obs-fold", req: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", status: 400, closed: true},
		{name: "space before colon", req: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", status: 400, closed: true},
		{name: "CL and TE", req: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400, closed: true},
		{name: "two lengths", req: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", status: 400, closed: true},
		{name: "bad length", req: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", status: 400, closed: true},
		{name: "gzip TE", req: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", status: 501, closed: true},
		{name: "bad chunk", req: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", status: 400, closed: true},
		{name: "HTTP/2.0", req: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505, closed: true},
		{name: "huge head", req: "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", http1.MaxHead) + "\r\n\r\n", status: 431, closed: true},
		{name: "CONNECT", req: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", status: 405, closed: true},
		{name: "HTTP/1.0", req: "GET / HTTP/1.0\r\nHost: a\r\n\r\n", status: 200, closed: true},
		{name: "HTTP/1.0 keep-alive", req: "GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", status: 200},
		{name: "close", req: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", status: 200, closed: true},
		{name: "absolute form", req: "GET http://a/x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dialRaw(t, addr)
			if _, err := io.WriteString(c, tt.req); err != nil {
				t.Fatal(err)
			}
			resp, body := readResp(t, br, "GET")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tt.status, body)
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("backend did not see %q in:\n%s", s, body)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(body, s) {
					t.Errorf("backend saw %q in:\n%s", s, body)
				}
			}
			if resp.StatusCode == 200 {
				if resp.Header.Get("X-Resp-Hop") != "" || resp.Header.Get("Keep-Alive") != "" {
					t.Errorf("response hop-by-hop headers leaked: %v", resp.Header)
				}
				if resp.Header.Get("X-Resp-End") != "kept" {
					t.Errorf("end-to-end response header lost: %v", resp.Header)
				}
			}
			// A closed connection reads EOF; an open one times out. (A
			// connection expected closed gets time for a slow machine.)
			wait := 100 * time.Millisecond
			if tt.closed {
				wait = 5 * time.Second
			}
			c.SetReadDeadline(time.Now().Add(wait))
			_, err := br.ReadByte()
			gotClosed := err == io.EOF
			if gotClosed != tt.closed {
				t.Errorf("connection closed=%v (err %v), want %v", gotClosed, err, tt.closed)
			}
		})
	}
}

func TestPipelinedAndExpect(t *testing.T) {
	addr, _, _ := rawProxy(t, echoHandler(1))
	c, br := dialRaw(t, addr)
	// Three requests in one write, answered in order.
	io.WriteString(c, "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\none"+
		"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nthree\r\n0\r\n\r\n")
	for _, want := range []struct{ uri, body string }{{"/1", "one"}, {"/2", ""}, {"/3", "three"}} {
		resp, body := readResp(t, br, "POST")
		if resp.Header.Get("X-URI") != want.uri || body != want.body {
			t.Fatalf("got %s %q, want %s %q", resp.Header.Get("X-URI"), body, want.uri, want.body)
		}
	}
	// Expect: 100-continue is answered by the proxy before the body is sent.
	io.WriteString(c, "PUT /e HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	if l, _ := br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("100 Continue not followed by blank line: %q", l)
	}
	io.WriteString(c, "body")
	resp, body := readResp(t, br, "PUT")
	if resp.StatusCode != 200 || body != "body" {
		t.Fatalf("after continue: %d %q", resp.StatusCode, body)
	}
}

// TestBackendFramings covers the answers a backend can frame: close
// delimited, HTTP/1.0, no body (HEAD, 204, 304), chunked with trailers.
func TestBackendFramings(t *testing.T) {
	raw := func(resp string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			brw.WriteString(resp)
			brw.Flush()
		})
	}
	tests := []struct {
		name, resp, method string
		status             int
		body               string
		wantLen            string // Content-Length the client sees, "" if none
	}{
		{"close-delimited", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil close", "GET", 200, "until close", ""},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET", 200, "hello", "5"},
		{"chunked trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", "GET", 200, "abc", ""},
		{"head", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", "HEAD", 200, "", "99"},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", 204, "", ""},
		{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "GET", 304, "", "10"},
		{"103 dropped", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", 200, "ok", "2"},
		{"no reason", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", "GET", 200, "ok", "2"},
		{"malformed", "HTTP/1.1 2xx Huh\r\n\r\n", "GET", 502, "bad gateway\n", "12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _, _ := rawProxy(t, raw(tt.resp))
			c, br := dialRaw(t, addr)
			for i := range 2 { // twice: the client connection must survive
				fmt.Fprintf(c, "%s /x HTTP/1.1\r\nHost: a\r\n\r\n", tt.method)
				resp, body := readResp(t, br, tt.method)
				if resp.StatusCode != tt.status || body != tt.body {
					t.Fatalf("round %d: %d %q, want %d %q", i, resp.StatusCode, body, tt.status, tt.body)
				}
				if got := resp.Header.Get("Content-Length"); got != tt.wantLen {
					t.Errorf("Content-Length %q, want %q", got, tt.wantLen)
				}
				if resp.Close {
					if tt.status != 502 {
						t.Errorf("client connection closed after a complete answer")
					}
					return
				}
			}
		})
	}
}

func TestStreamingBodies(t *testing.T) {
	// Full duplex: the backend echoes each piece as it arrives, so the
	// client reads the echo of piece i before it sends piece i+1.
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.EnableFullDuplex()
		w.WriteHeader(200)
		rc.Flush()
		buf := make([]byte, 1024)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				rc.Flush()
			}
			if err != nil {
				return
			}
		}
	})
	addr, _, _ := rawProxy(t, echo)
	c, br := dialRaw(t, addr)
	io.WriteString(c, "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
	resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		piece := fmt.Sprintf("piece-%d", i)
		fmt.Fprintf(c, "%x\r\n%s\r\n", len(piece), piece)
		got := make([]byte, len(piece))
		if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != piece {
			t.Fatalf("echo %d: %q %v", i, got, err)
		}
	}
	io.WriteString(c, "0\r\n\r\n")
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("end of echo: %q %v", rest, err)
	}

	// Large bodies both ways, with and without a known length.
	sum := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
		w.Header().Set("X-Len", fmt.Sprint(n))
		if r.URL.Query().Get("cl") == "1" {
			w.Header().Set("Content-Length", fmt.Sprint(n))
		}
		// Answer with the same bytes regenerated.
		for i := int64(0); i < n; i += 4096 {
			w.Write(pattern[:min(4096, n-i)])
		}
	})
	_, b := backendServer(t, 1, sum)
	p := New(Options{})
	p.SetPrimary(b)
	base := startProxy(t, p)
	const size = 8 << 20
	var body bytes.Buffer
	for body.Len() < size {
		body.Write(pattern[:4096])
	}
	want := fmt.Sprintf("%x", sha256.Sum256(body.Bytes()))
	for _, tt := range []struct {
		name   string
		length int64
		cl     string
	}{{"known length", size, "1"}, {"chunked", -1, "0"}} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", base+"/big?cl="+tt.cl, io.MultiReader(bytes.NewReader(body.Bytes())))
			req.ContentLength = tt.length
			resp, err := newClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get("X-Sum") != want || n != size || fmt.Sprintf("%x", h.Sum(nil)) != want {
				t.Fatalf("sums differ: backend %s, response %d bytes", resp.Header.Get("X-Sum"), n)
			}
		})
	}
}

var pattern = func() []byte {
	b := make([]byte, 4096)
	for i := range b {
		b[i] = byte(i*7 + i/13)
	}
	return b
}()

func TestWebSocketTunnel(t *testing.T) {
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			http.Error(w, "want upgrade", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + r.Header.Get("Sec-WebSocket-Key") + "\r\n\r\nhi")
		brw.Flush()
		io.Copy(c, brw) // echo raw bytes until the client closes
	})
	addr, p, b := rawProxy(t, ws)
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k3y\r\nSec-WebSocket-Version: 13\r\n\r\nearly")
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Sec-Websocket-Accept") != "k3y" {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	got := make([]byte, len("hiearly"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "hiearly" {
		t.Fatalf("first bytes %q %v", got, err)
	}
	if st := b.Stats(); st.Tunnels != 1 || st.InFlight != 0 {
		t.Fatalf("stats during tunnel %+v", st)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	if err := b.Idle(ctx); err == nil {
		t.Fatal("Idle returned with a tunnel open")
	}
	cancel()
	for i := range 3 {
		msg := fmt.Sprintf("frame %d", i)
		io.WriteString(c, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo %q %v", got, err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after close: %v, want EOF", err)
	}
	if err := b.Idle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p.Stats().Failures != 0 {
		t.Fatalf("stats %+v", p.Stats())
	}

	// Close ends the backend's tunnels at once (a drain past its deadline).
	c2, br2 := dialRaw(t, addr)
	io.WriteString(c2, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n")
	if resp, err := http.ReadResponse(br2, &http.Request{Method: "GET"}); err != nil || resp.StatusCode != 101 {
		t.Fatalf("second handshake: %v", err)
	}
	b.Close()
	if _, err := io.ReadAll(br2); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	if err := b.Idle(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestStaleIdleConnection: a backend closes idle keep-alive connections
// on its own (as Node does after 5 s); a POST must not land on one.
func TestStaleIdleConnection(t *testing.T) {
	srv, b := backendServer(t, 1, echoHandler(1))
	p := New(Options{})
	p.SetPrimary(b)
	base := startProxy(t, p)
	c := newClient()
	for range 3 {
		resp, err := c.Post(base+"/", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// Close the backend's side of every idle connection, and wait
		// until the pool's connection has seen it.
		srv.CloseClientConnections()
		b.mu.Lock()
		idle := append([]*upconn(nil), b.idle...)
		b.mu.Unlock()
		for _, u := range idle {
			for alive(u.c) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	if p.Stats().Failures != 0 {
		t.Fatalf("stats %+v", p.Stats())
	}
}

func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	_, b := backendServer(t, 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			<-release
		}
		io.WriteString(w, "done")
	}))
	p := New(Options{})
	p.SetPrimary(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	addr := ln.Addr().String()

	idle, ibr := dialRaw(t, addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readResp(t, ibr, "GET")

	busy, bbr := dialRaw(t, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-arrived

	shut := make(chan error, 1)
	go func() { shut <- p.Shutdown(t.Context()) }()
	// The idle connection is closed at once.
	if _, err := ibr.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	close(release)
	resp, body := readResp(t, bbr, "GET")
	if body != "done" || !resp.Close {
		t.Fatalf("in-flight answer %q close=%v, want done and Connection: close", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestExpectContinueChunkedAndInspectBody(t *testing.T) {
	_, b := backendServer(t, 1, echoHandler(1))
	p := New(Options{BodyCap: 64})
	p.SetPrimary(b)
	inspected := make(chan string, 4)
	p.SetHooks(Hooks{Inspect: func(r *Request) *Answer {
		inspected <- string(r.Body)
		return nil
	}, InspectBody: true})
	addr := strings.TrimPrefix(startProxy(t, p), "http://")
	c, br := dialRaw(t, addr)

	// A chunked body behind Expect: 100-continue: with InspectBody the
	// proxy asks for the body before routing.
	io.WriteString(c, "POST /e HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n")
	resp, body := readResp(t, br, "POST")
	if resp.StatusCode != 200 || body != "abcdefg" {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
	if got := <-inspected; got != "abcdefg" {
		t.Fatalf("Inspect saw body %q", got)
	}
}

// TestEarlyAnswer: a backend that refuses a large upload without reading
// it; the client gets the refusal.
func TestEarlyAnswer(t *testing.T) {
	addr, _, _ := rawProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}))
	c, br := dialRaw(t, addr)
	go func() {
		fmt.Fprintf(c, "PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", 64<<20)
		chunk := bytes.Repeat([]byte("u"), 64<<10)
		for range 1024 {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	resp, body := readResp(t, br, "PUT")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || body != "too large\n" {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
}

// TestThirdPartyBackend puts a real third-party server behind the proxy:
// Python's http.server answers HTTP/1.0 and closes every connection.
func TestThirdPartyBackend(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello.json"), []byte(`{"hello":"world"}`), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.CommandContext(t.Context(), py, "-m", "http.server", fmt.Sprint(port), "--bind", "127.0.0.1", "--directory", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	baddr := fmt.Sprintf("127.0.0.1:%d", port)
	for {
		c, err := net.Dial("tcp", baddr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-t.Context().Done():
			t.Fatal("python http.server did not start")
		case <-time.After(20 * time.Millisecond):
		}
	}
	p := New(Options{})
	p.SetPrimary(NewBackend(1, baddr))
	base := startProxy(t, p)
	c := newClient()
	for i := range 20 {
		method := []string{"GET", "HEAD"}[i%2]
		req, _ := http.NewRequest(method, base+"/hello.json", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := `{"hello":"world"}`
		if method == "HEAD" {
			want = ""
		}
		if resp.StatusCode != 200 || string(body) != want || resp.Close {
			t.Fatalf("%s %d: %d %q close=%v", method, i, resp.StatusCode, body, resp.Close)
		}
	}
	if st := p.Stats(); st.Failures != 0 || st.Requests != 20 {
		t.Fatalf("stats %+v", st)
	}
}
