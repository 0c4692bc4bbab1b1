package proxy

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/graftdev/graft/internal/proxy/http1"
)

// Backend is one upstream (a generation's private address) with its own
// pool of keep-alive connections, made for a single address: a LIFO stack
// of idle connections, no per-connection goroutines.
type Backend struct {
	gen  int
	addr string
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	now  func() time.Time // the clock of the lost list

	mu      sync.Mutex
	closed  bool
	idle    []*upconn // LIFO: the most recently used is the warmest
	flights flight    // sentinel of the in-flight list
	nflight int
	tunnels map[*upconn]struct{} // upgraded connections now open
	idleCh  chan struct{}        // closed when nothing is in flight; nil until awaited
	lost    []lostRequest        // recent requests whose connection to b broke
	lostMem int                  // lostSize of lost's requests

	nReq, nFail atomic.Uint64
}

const (
	maxIdlePerBackend = 512
	// A connection idle longer than this is checked for a close from the
	// backend (idle timeout) before a request is written to it.
	staleCheckAfter = 250 * time.Millisecond
	dialTimeout     = 5 * time.Second
)

// BackendStats are a backend's counts.
type BackendStats struct {
	Requests uint64 // requests sent to it (retries included)
	Failures uint64 // exchanges that ended without a complete response from it
	InFlight int    // requests now in flight to it
	Tunnels  int    // upgraded (WebSocket) connections now open to it
}

// NewBackend returns a backend for the generation gen listening on addr
// ("127.0.0.1:port").
func NewBackend(gen int, addr string) *Backend {
	d := &net.Dialer{Timeout: dialTimeout}
	b := &Backend{gen: gen, addr: addr, dial: d.DialContext, now: time.Now, tunnels: make(map[*upconn]struct{})}
	b.flights.next, b.flights.prev = &b.flights, &b.flights
	return b
}

// Gen returns the generation number given to NewBackend.
func (b *Backend) Gen() int { return b.gen }

// Addr returns the backend's address.
func (b *Backend) Addr() string { return b.addr }

// Stats returns the backend's counts.
func (b *Backend) Stats() BackendStats {
	b.mu.Lock()
	n, t := b.nflight, len(b.tunnels)
	b.mu.Unlock()
	return BackendStats{Requests: b.nReq.Load(), Failures: b.nFail.Load(), InFlight: n, Tunnels: t}
}

// InFlight returns copies of the requests now in flight to b, for crash
// attribution. A crash closes the process's sockets before its supervisor
// sees the exit, and the proxy reacts to the closed connection at once
// (502, or a retry elsewhere), so the list also holds the requests whose
// connection to b broke off without a complete answer within the last
// lostTTL. Upgraded connections are not listed once they are tunnels.
func (b *Backend) InFlight() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Request, 0, b.nflight+len(b.lost))
	seen := make(map[uint64]bool, b.nflight)
	for f := b.flights.next; f != &b.flights; f = f.next {
		r := f.x.snapshot(b.gen)
		seen[r.ID] = true
		out = append(out, r)
	}
	cutoff := b.now().Add(-lostTTL)
	for _, l := range b.lost {
		if l.at.After(cutoff) && !seen[l.req.ID] {
			seen[l.req.ID] = true
			out = append(out, copyRequest(&l.req))
		}
	}
	return out
}

// lostTTL is how long a request whose connection broke stays listed by
// InFlight; maxLost bounds how many are kept. A crash breaks every
// connection to the generation at once, and self-healing takes its
// suspects from this list (it copies a request only when a rule or guard
// needs it), so the bound is well above the connections a generation
// serves at a time: a crasher pushed out by its neighbours would go
// unsealed. maxLostBytes bounds the memory they hold (their bodies, up to
// BodyCap each), since the list is pruned only when another is added.
const (
	lostTTL      = 2 * time.Second
	maxLost      = 1024
	maxLostBytes = 16 << 20
)

// lostSize is what a kept request counts against maxLostBytes: its body
// and a typical head.
func lostSize(r *Request) int { return len(r.Body) + 1024 }

type lostRequest struct {
	at  time.Time
	req Request
}

// releaseLost ends f's flight, keeping a copy of its request for InFlight:
// its connection to b broke before a complete answer.
func (b *Backend) releaseLost(f *flight) {
	r := f.x.snapshot(b.gen)
	now := b.now()
	b.mu.Lock()
	// Drop what has aged out (oldest first), then the oldest beyond the
	// bounds.
	drop, mem := 0, b.lostMem+lostSize(&r)
	for drop < len(b.lost) && (now.Sub(b.lost[drop].at) > lostTTL || len(b.lost)+1-drop > maxLost || mem > maxLostBytes) {
		mem -= lostSize(&b.lost[drop].req)
		drop++
	}
	b.lostMem = mem
	if drop > 0 {
		n := copy(b.lost, b.lost[drop:])
		clear(b.lost[n:])
		b.lost = b.lost[:n]
	}
	b.lost = append(b.lost, lostRequest{at: now, req: r})
	b.mu.Unlock()
	b.release(f, nil)
}

func copyRequest(r *Request) Request {
	c := *r
	c.Header = r.Header.Clone()
	if r.Body != nil {
		c.Body = append([]byte(nil), r.Body...)
	}
	return c
}

// Idle returns when nothing (request or tunnel) is in flight to b, or with
// ctx's error.
func (b *Backend) Idle(ctx context.Context) error {
	b.mu.Lock()
	if b.nflight == 0 && len(b.tunnels) == 0 {
		b.mu.Unlock()
		return nil
	}
	if b.idleCh == nil {
		b.idleCh = make(chan struct{})
	}
	ch := b.idleCh
	b.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes b's idle upstream connections and its tunnels at once;
// connections in use by a request are closed when their exchange ends. b
// takes no more requests: a request routed to it afterwards goes to the
// current primary instead (nothing has been sent, so even a POST may).
func (b *Backend) Close() {
	b.mu.Lock()
	b.closed = true
	idle := b.idle
	b.idle = nil
	var tunnels []*upconn
	for u := range b.tunnels {
		tunnels = append(tunnels, u)
	}
	b.mu.Unlock()
	for _, u := range idle {
		u.c.Close()
	}
	for _, u := range tunnels {
		u.c.Close()
	}
}

func (b *Backend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// flight is a node of a backend's intrusive in-flight list: registering a
// request costs no allocation.
type flight struct {
	prev, next *flight
	x          *exchange
}

// acquire registers f as in flight; false when b is closed (nothing sent).
func (b *Backend) acquire(f *flight) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	f.prev, f.next = b.flights.prev, &b.flights
	b.flights.prev.next = f
	b.flights.prev = f
	b.nflight++
	b.mu.Unlock()
	b.nReq.Add(1)
	return true
}

// release ends f's flight and, when u is non-nil, returns u to the pool.
func (b *Backend) release(f *flight, u *upconn) {
	b.mu.Lock()
	f.prev.next = f.next
	f.next.prev = f.prev
	f.prev, f.next = nil, nil
	b.nflight--
	if u != nil {
		if b.closed || len(b.idle) >= maxIdlePerBackend {
			defer u.c.Close()
		} else {
			u.idleSince = time.Now()
			b.idle = append(b.idle, u)
		}
	}
	b.wakeLocked()
	b.mu.Unlock()
}

// startTunnel moves f's request to the tunnel set.
func (b *Backend) startTunnel(f *flight, u *upconn) {
	b.mu.Lock()
	f.prev.next = f.next
	f.next.prev = f.prev
	f.prev, f.next = nil, nil
	b.nflight--
	b.tunnels[u] = struct{}{}
	closed := b.closed
	b.mu.Unlock()
	if closed {
		u.c.Close()
	}
}

func (b *Backend) endTunnel(u *upconn) {
	b.mu.Lock()
	delete(b.tunnels, u)
	b.wakeLocked()
	b.mu.Unlock()
}

func (b *Backend) wakeLocked() {
	if b.nflight == 0 && len(b.tunnels) == 0 && b.idleCh != nil {
		close(b.idleCh)
		b.idleCh = nil
	}
}

// upconn is one connection to a backend.
type upconn struct {
	c         net.Conn
	in        http1.Reader
	reused    bool
	idleSince time.Time
}

// get returns a pooled connection or dials a new one. check asks for a
// liveness check of a pooled connection, for requests that cannot be
// retried if the backend closed it while idle; others are checked only
// after a longer idle time (a failure on a reused connection is retried).
func (b *Backend) get(ctx context.Context, check bool) (*upconn, error) {
	for {
		b.mu.Lock()
		n := len(b.idle)
		if n == 0 {
			b.mu.Unlock()
			break
		}
		u := b.idle[n-1]
		b.idle[n-1] = nil
		b.idle = b.idle[:n-1]
		b.mu.Unlock()
		if (check || time.Since(u.idleSince) > staleCheckAfter) && !alive(u.c) {
			u.c.Close()
			continue
		}
		u.reused = true
		return u, nil
	}
	c, err := b.dial(ctx, "tcp", b.addr)
	if err != nil {
		return nil, err
	}
	u := &upconn{c: c}
	u.in = http1.NewReader(c)
	return u, nil
}

// alive reports whether an idle connection is still open: a peek that
// would block means nothing (no EOF, no stray bytes) arrived while idle.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	live := false
	err = rc.Read(func(fd uintptr) bool {
		var buf [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		live = rerr == syscall.EAGAIN
		return true
	})
	return err == nil && live
}
