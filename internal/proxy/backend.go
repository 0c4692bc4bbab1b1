package proxy

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Backend is one upstream (a generation's private address) with its own
// pool of keep-alive connections.
type Backend struct {
	gen  int
	addr string
	tr   *http.Transport

	mu      sync.Mutex
	closed  bool
	flights map[uint64]*Request // requests now in flight, immutable once added
	tunnels int                 // upgraded connections now open
	idle    chan struct{}       // closed when nothing is in flight; nil until awaited

	nReq, nFail atomic.Uint64
}

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
	return &Backend{
		gen:     gen,
		addr:    addr,
		flights: make(map[uint64]*Request),
		tr: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// Gen returns the generation number given to NewBackend.
func (b *Backend) Gen() int { return b.gen }

// Addr returns the backend's address.
func (b *Backend) Addr() string { return b.addr }

// Stats returns the backend's counts.
func (b *Backend) Stats() BackendStats {
	b.mu.Lock()
	n, t := len(b.flights), b.tunnels
	b.mu.Unlock()
	return BackendStats{Requests: b.nReq.Load(), Failures: b.nFail.Load(), InFlight: n, Tunnels: t}
}

// InFlight returns copies of the requests now in flight to b, for crash
// attribution. Upgraded connections are not listed once they are tunnels.
func (b *Backend) InFlight() []Request {
	b.mu.Lock()
	out := make([]Request, 0, len(b.flights))
	for _, r := range b.flights {
		out = append(out, copyRequest(r))
	}
	b.mu.Unlock()
	return out
}

// Idle returns when nothing (request or tunnel) is in flight to b, or with
// ctx's error.
func (b *Backend) Idle(ctx context.Context) error {
	b.mu.Lock()
	if len(b.flights) == 0 && b.tunnels == 0 {
		b.mu.Unlock()
		return nil
	}
	if b.idle == nil {
		b.idle = make(chan struct{})
	}
	ch := b.idle
	b.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes b's idle upstream connections at once; connections in use
// are closed when their exchange ends. b takes no more requests: a request
// routed to it afterwards goes to the current primary instead.
func (b *Backend) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.tr.CloseIdleConnections()
}

// acquire registers r as in flight; false when b is closed (nothing was sent).
func (b *Backend) acquire(r *Request) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.flights[r.ID] = r
	b.mu.Unlock()
	b.nReq.Add(1)
	return true
}

// release ends r's flight; tunnel moves it to the tunnel count instead.
func (b *Backend) release(id uint64, tunnel bool) {
	b.mu.Lock()
	delete(b.flights, id)
	if tunnel {
		b.tunnels++
	}
	b.wakeLocked()
	b.mu.Unlock()
}

func (b *Backend) releaseTunnel() {
	b.mu.Lock()
	b.tunnels--
	b.wakeLocked()
	b.mu.Unlock()
}

func (b *Backend) wakeLocked() {
	if len(b.flights) == 0 && b.tunnels == 0 && b.idle != nil {
		close(b.idle)
		b.idle = nil
	}
}

func copyRequest(r *Request) Request {
	c := *r
	c.Header = r.Header.Clone()
	if r.Body != nil {
		c.Body = append([]byte(nil), r.Body...)
	}
	return c
}
