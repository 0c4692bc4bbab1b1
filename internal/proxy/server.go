package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/graftdev/graft/internal/proxy/http1"
)

// server is the client side: it accepts connections and runs one
// goroutine per connection that reads a request, forwards it and writes
// the answer, in turn (HTTP/1.1 keep-alive, pipelined requests in order).
type server struct {
	p *Proxy

	mu       sync.Mutex
	closing  bool
	lns      map[net.Listener]struct{}
	conns    map[*clientConn]struct{}
	wg       sync.WaitGroup // connection goroutines
	shutdown chan struct{}  // closed when Shutdown starts
}

// Connection states, for Shutdown: only a connection waiting for the
// first byte of its next request may be closed under it.
const (
	stateActive int32 = iota
	stateIdle
	stateClosed
)

const (
	// clientIdleTimeout bounds how long a client connection may sit between
	// requests (or dribble a head); refreshed lazily to keep deadline
	// updates off the per-request path.
	clientIdleTimeout = 2 * time.Minute
)

func newServer(p *Proxy) *server {
	return &server{
		p:        p,
		lns:      make(map[net.Listener]struct{}),
		conns:    make(map[*clientConn]struct{}),
		shutdown: make(chan struct{}),
	}
}

func (s *server) serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.p.logf("accept", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.shutdown:
				}
				continue
			}
			return err
		}
		backoff = 0
		cc := newClientConn(s, c)
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[cc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			cc.serve()
			s.mu.Lock()
			delete(s.conns, cc)
			s.mu.Unlock()
		}()
	}
}

func (s *server) isClosing() bool {
	select {
	case <-s.shutdown:
		return true
	default:
		return false
	}
}

func (s *server) shutdownAll(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.shutdown)
	}
	for ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for cc := range s.conns {
			if cc.state.CompareAndSwap(stateIdle, stateClosed) {
				cc.c.Close()
			}
		}
		s.mu.Unlock()
		select {
		case <-done:
			return nil
		case <-tick.C:
		case <-ctx.Done():
			s.mu.Lock()
			for cc := range s.conns {
				cc.state.Store(stateClosed)
				cc.c.Close()
				cc.closeTunnel()
			}
			s.mu.Unlock()
			<-done
			return ctx.Err()
		}
	}
}

// clientConn is one client connection and the state reused by its
// exchanges.
type clientConn struct {
	s     *server
	p     *Proxy
	c     net.Conn
	in    http1.Reader
	state atomic.Int32
	ip    []byte // client address for X-Forwarded-For; nil for unix sockets

	deadline time.Time // current read deadline (refreshed lazily)
	x        exchange

	tmu    sync.Mutex
	tunnel *upconn // the backend side of an upgraded connection
}

func newClientConn(s *server, c net.Conn) *clientConn {
	cc := &clientConn{s: s, p: s.p, c: c}
	cc.in = http1.NewReader(c)
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		cc.ip = []byte(ta.IP.String())
	}
	cc.x.cc = cc
	cc.x.fl.x = &cc.x
	cc.x.admitView = View{x: &cc.x}
	cc.x.doneView = View{x: &cc.x, done: true}
	return cc
}

func (cc *clientConn) closeTunnel() {
	cc.tmu.Lock()
	if cc.tunnel != nil {
		cc.tunnel.c.Close()
	}
	cc.tmu.Unlock()
}

func (cc *clientConn) serve() {
	defer cc.c.Close()
	for {
		if len(cc.in.Buffered()) == 0 {
			cc.state.Store(stateIdle)
			if cc.s.isClosing() {
				return
			}
		}
		cc.extendDeadline()
		n, err := cc.in.ReadHead()
		if !cc.state.CompareAndSwap(stateIdle, stateActive) && cc.state.Load() == stateClosed {
			return
		}
		if err != nil {
			if errors.Is(err, http1.ErrHeadTooLarge) {
				cc.writeError(431, "request head too large")
			} else if len(cc.in.Buffered()) > 0 && !isNetErr(err) {
				cc.writeError(400, "bad request")
			}
			return
		}
		if !cc.x.run(n) {
			return
		}
		cc.x.trim()
	}
}

// extendDeadline moves the read deadline on when less than half of
// clientIdleTimeout is left: a client may idle or stall that long, and a
// long upload that keeps sending is never cut off.
func (cc *clientConn) extendDeadline() {
	now := time.Now()
	if cc.deadline.Sub(now) < clientIdleTimeout/2 {
		cc.deadline = now.Add(clientIdleTimeout)
		cc.c.SetReadDeadline(cc.deadline)
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// writeError answers a request the proxy could not parse; the connection
// is closed afterwards.
func (cc *clientConn) writeError(status int, msg string) {
	cc.c.Write(http1.AppendError(nil, status, msg, true))
}
