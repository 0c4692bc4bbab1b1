package live

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"
)

// Serve serves HTTP on ln with h until this generation has drained, then
// returns nil. See ServeServer.
func (g *Gen) Serve(ln net.Listener, h http.Handler) error {
	return g.ServeServer(&http.Server{Handler: h, ReadHeaderTimeout: time.Minute}, ln)
}

// ServeServer serves hs on ln until this generation has drained. The drain
// loses nothing: accepting stops, every request already accepted or on the
// wire is answered, responses carry "Connection: close" so keep-alive
// clients move on after their current or next request instead of having
// the connection cut under them, and connections still open at the drain
// deadline (idle keep-alive clients that never speak again, hijacked
// connections) are closed then. While parked, requests on connections
// already open are still answered, with "Connection: close". Once the state
// belongs to a successor, requests are forwarded to it. hs.Handler and
// hs.ConnState are wrapped; hs must not be used elsewhere.
func (g *Gen) ServeServer(hs *http.Server, ln net.Listener) error {
	s := &server{g: g, h: hs.Handler, conns: map[*trackedConn]http.ConnState{}, changed: make(chan struct{}, 1)}
	if s.h == nil {
		s.h = http.DefaultServeMux
	}
	userState := hs.ConnState
	hs.Handler = s
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		if tc, ok := c.(*trackedConn); ok {
			s.setState(tc, st)
		}
		if userState != nil {
			userState(c, st)
		}
	}
	gl := g.gateListener(ln)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(&trackingListener{Listener: gl, s: s}) }()

	select {
	case err := <-served:
		if !errors.Is(err, net.ErrClosed) || !g.isDraining() {
			return fmt.Errorf("serve: %w", err)
		}
	case <-g.drainCtx.Done():
		if err := <-served; !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	s.drain(g.DrainDeadline())
	return nil
}

func (g *Gen) isDraining() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.draining
}

// server tracks the connections of one ServeServer.
type server struct {
	g       *Gen
	h       http.Handler
	mu      sync.Mutex
	conns   map[*trackedConn]http.ConnState
	changed chan struct{}
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.g.work.add(1)
	defer s.g.work.add(-1)
	r = r.WithContext(context.WithValue(r.Context(), servedKey{}, true))
	if !s.g.serving() {
		w.Header().Set("Connection", "close")
	}
	if s.g.moved() {
		s.g.fwd.forward(w, r)
		return
	}
	s.h.ServeHTTP(&closingWriter{ResponseWriter: w, g: s.g}, r)
}

// closingWriter adds "Connection: close" to a response whose header is
// written after this generation stopped serving, so that a request in
// flight when a drain or park began does not leave an idle keep-alive
// connection behind.
type closingWriter struct {
	http.ResponseWriter
	g     *Gen
	wrote bool
}

func (c *closingWriter) check() {
	if !c.wrote {
		c.wrote = true
		if !c.g.serving() {
			c.ResponseWriter.Header().Set("Connection", "close")
		}
	}
}

func (c *closingWriter) WriteHeader(code int) {
	if code >= 200 {
		c.check()
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *closingWriter) Write(p []byte) (int, error) {
	c.check()
	return c.ResponseWriter.Write(p)
}

func (c *closingWriter) Flush() {
	c.check()
	http.NewResponseController(c.ResponseWriter).Flush()
}

// Hijack keeps hijacking (WebSockets) working through the wrapper; the
// hijacked connection stays tracked until it is closed.
func (c *closingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c.wrote = true
	return http.NewResponseController(c.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (c *closingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (s *server) setState(c *trackedConn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == http.StateClosed {
		delete(s.conns, c)
	} else if _, gone := s.conns[c]; gone || st == http.StateNew {
		s.conns[c] = st
	}
	s.poke()
}

func (s *server) closed(c *trackedConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.poke()
	s.mu.Unlock()
}

func (s *server) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// drain waits for every connection to close, closing what remains at the
// deadline. Idle keep-alive connections are not closed early: the client
// may be sending its next request at this very moment, and cutting the
// connection would lose it (a POST cannot be retried). Their next request
// is answered with "Connection: close".
func (s *server) drain(deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-s.changed:
		case <-timer.C:
			s.mu.Lock()
			left := make([]*trackedConn, 0, len(s.conns))
			for c := range s.conns {
				left = append(left, c)
			}
			s.mu.Unlock()
			for _, c := range left {
				c.Close()
			}
			s.g.log.Info("drain deadline: closed connections", "count", len(left))
			return
		}
	}
}

// trackingListener wraps accepted connections so that their closing is
// seen even after a handler hijacks them.
type trackingListener struct {
	net.Listener
	s *server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	l.s.conns[tc] = http.StateNew
	l.s.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	s    *server
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.s.closed(c) })
	return err
}

// Mutating wraps a handler that changes registered state. It runs h while
// no handoff is under way; during a handoff the request waits for the
// outcome, and if the state went to a successor the request is forwarded
// to it through the listener it came in on, so it is applied exactly once,
// there.
func (g *Gen) Mutating(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Waiting in the gate is not work in flight: a park must not wait
		// for a handoff outcome that only the supervisor can send.
		counted, _ := r.Context().Value(servedKey{}).(bool)
		if counted {
			g.work.add(-1)
		}
		err := g.gate.enter(r.Context())
		if counted {
			g.work.add(1)
		}
		switch {
		case errors.Is(err, ErrMoved):
			w.Header().Set("Connection", "close")
			g.fwd.forward(w, r)
			return
		case err != nil:
			return // the client went away while waiting
		}
		defer g.gate.leave()
		h.ServeHTTP(w, r)
	})
}

// forwardHeader counts hops so that forwarding never loops.
const forwardHeader = "Graft-Forwarded"

// maxHops bounds forwarding: a held request can follow the state through
// several quick upgrades in a row, but never loop forever.
const maxHops = 32

// forwarder sends requests to the listener they came in on, where the
// generation that now holds the state accepts.
type forwarder struct {
	proxy *httputil.ReverseProxy
}

type addrKey struct{}

// servedKey marks requests counted as work by a live server.
type servedKey struct{}

func newForwarder() *forwarder {
	tr := &http.Transport{
		DisableKeepAlives: true, // each forward is a handful during a handoff
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			a, _ := ctx.Value(addrKey{}).(net.Addr)
			if a == nil {
				return nil, errors.New("forward: no local address")
			}
			var d net.Dialer
			return d.DialContext(ctx, a.Network(), a.String())
		},
	}
	return &forwarder{proxy: &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = pr.In.Host
			if pr.Out.URL.Host == "" {
				pr.Out.URL.Host = "localhost"
			}
			pr.Out.Host = pr.In.Host
			hops, _ := strconv.Atoi(pr.In.Header.Get(forwardHeader))
			pr.Out.Header.Set(forwardHeader, strconv.Itoa(hops+1))
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "forward to the serving generation: "+err.Error(), http.StatusBadGateway)
		},
	}}
}

func (f *forwarder) forward(w http.ResponseWriter, r *http.Request) {
	hops, _ := strconv.Atoi(r.Header.Get(forwardHeader))
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if hops >= maxHops || a == nil {
		http.Error(w, "no generation holds the state", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Connection", "close")
	ctx := context.WithValue(r.Context(), addrKey{}, a)
	f.proxy.ServeHTTP(w, r.WithContext(ctx))
}
