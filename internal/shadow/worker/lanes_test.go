package worker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The lane client against real servers: framing, the body cap, HEAD, and
// connections kept, dropped and found closed.
func TestLaneClient(t *testing.T) {
	big := strings.Repeat("x", 100)
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("X-Kind", "chunked")
			io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
		case "/big":
			io.WriteString(w, big)
		case "/huge":
			io.WriteString(w, strings.Repeat("y", 2*maxDrain))
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		default:
			fmt.Fprintf(w, "%s %s host=%s", r.Method, r.URL.RequestURI(), r.Host)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	l := newLaneClient(addr(srv), 64, 5*time.Second, 2)
	defer l.close()
	tests := []struct {
		method, path string
		header       http.Header
		status       int
		body         string
		truncated    bool
		newConn      bool // the request needs a new connection
	}{
		{"GET", "/a?b=1", http.Header{"Host": {"example.org"}}, 200, "GET /a?b=1 host=example.org", false, true},
		{"GET", "/b", nil, 200, "GET /b host=" + addr(srv), false, false},
		{"HEAD", "/c", nil, 200, "", false, false},
		{"GET", "/chunked", nil, 200, "part one, part two", false, false},
		{"GET", "/big", nil, 200, big[:64], true, false},
		{"GET", "/huge", nil, 200, strings.Repeat("y", 64), true, false}, // too long to drain: closed after
		{"GET", "/after-huge", nil, 200, "GET /after-huge host=" + addr(srv), false, true},
		{"GET", "/close", nil, 200, "bye", false, false}, // the lane closes after this one
		{"GET", "/after-close", nil, 200, "GET /after-close host=" + addr(srv), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			before := conns.Load()
			a := l.do(t.Context(), &Request{Method: tt.method, Path: strings.SplitN(tt.path, "?", 2)[0], RawQuery: query(tt.path), Header: tt.header})
			if a.Err != nil {
				t.Fatal(a.Err)
			}
			if a.Status != tt.status || string(a.Body) != tt.body || a.Truncated != tt.truncated {
				t.Errorf("got %d %q truncated %v, want %d %q %v", a.Status, a.Body, a.Truncated, tt.status, tt.body, tt.truncated)
			}
			if got := conns.Load() > before; got != tt.newConn {
				t.Errorf("new connection: %v, want %v", got, tt.newConn)
			}
		})
	}
}

func addr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func query(p string) string {
	if _, q, ok := strings.Cut(p, "?"); ok {
		return q
	}
	return ""
}

// A kept-alive connection the lane has closed while idle is found dead at
// the next request, which is sent again on a new connection.
func TestLaneClientStaleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{}, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				// One answer per connection, then close without saying so.
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				served <- struct{}{}
			}()
		}
	}()
	l := newLaneClient(ln.Addr().String(), 64, 5*time.Second, 1)
	defer l.close()
	dial := l.dial
	var dials atomic.Int64
	l.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	for i := range 3 {
		if i > 0 && len(l.idle) != 1 {
			t.Fatalf("request %d: %d idle connections, want the stale one", i, len(l.idle))
		}
		a := l.do(t.Context(), &Request{Method: "GET", Path: "/"})
		if a.Err != nil || string(a.Body) != "ok" {
			t.Fatalf("request %d: %v %q", i, a.Err, a.Body)
		}
		<-served
		if got := dials.Load(); got != int64(i+1) {
			t.Fatalf("request %d: %d dials, want %d", i, got, i+1)
		}
	}
	// A POST is not sent again: the stale connection's error is its answer.
	if a := l.do(t.Context(), &Request{Method: "POST", Path: "/", Body: []byte("x")}); a.Err == nil {
		t.Errorf("POST on a stale connection answered %d %q, want an error", a.Status, a.Body)
	}
}
