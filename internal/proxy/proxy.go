// Package proxy is graft's HTTP/1.1 reverse proxy for proxy mode: it holds
// the client connections itself and routes each request to the serving
// generation (the primary), so generations can be replaced under load
// without a client ever seeing a failed request. It carries the hooks that
// shadowing (Observe) and self-healing (Inspect, Backend.InFlight) need.
package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Proxy; the zero value works.
type Options struct {
	Logger *slog.Logger // nil: log nothing
	// BodyCap bounds the bytes of a request or response body copied for
	// hooks and in-flight snapshots; 0 means 64 KiB. Bodies are streamed to
	// the backend/client regardless; only the copy is capped.
	BodyCap int
	// WaitForBackend is how long a request waits for a primary when there is
	// none (e.g. between a crash and its restart) before it is answered 503.
	// 0 means 5s.
	WaitForBackend time.Duration
}

const (
	defaultBodyCap = 64 << 10
	defaultWait    = 5 * time.Second
)

// Request is a copy of a proxied request, safe to keep after the exchange.
type Request struct {
	ID       uint64
	Time     time.Time
	Gen      int // backend generation it went to (0 when answered by Inspect)
	Method   string
	Path     string // URL path
	RawQuery string
	Header   http.Header
	Body     []byte // first BodyCap bytes
	BodyLen  int64  // full length when known, -1 otherwise
}

// Response is a copy of a backend's response, safe to keep.
type Response struct {
	Status  int
	Header  http.Header
	Body    []byte // first BodyCap bytes
	BodyLen int64
	Latency time.Duration
}

// Answer is a reply written without reaching a backend.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Hooks lets shadowing and healing see traffic. The zero Hooks costs
// nothing on the data path. Requests and responses handed to hooks are
// read-only: Observe is given the header map and body Inspect saw for the
// same request (a hook may keep them, but must not change them).
type Hooks struct {
	// Inspect sees each request before routing (after reading up to BodyCap
	// bytes of body when InspectBody is set; the full body is still streamed
	// to the backend). A non-nil Answer is written instead of proxying.
	Inspect     func(*Request) *Answer
	InspectBody bool
	// Observe gets each completed exchange after the client's answer has been
	// written. It must not block: hand off to a bounded queue.
	Observe func(*Request, *Response)
	// Admit and Complete are Inspect and Observe for hooks that need the
	// request's copy only now and then: they get a View, whose Request
	// makes the copy on first use, so a request no hook asks about is
	// never copied. The Response Complete gets is valid only during the
	// call. When both are set, Inspect runs before Admit and Observe
	// before Complete.
	Admit    func(*View) *Answer
	Complete func(*View, *Response)
	// ObserveResponse makes the proxy copy the answer's header and up to
	// BodyCap bytes of its body for Observe (shadowing compares them).
	// Without it Response carries Status, BodyLen and Latency only, and the
	// hot path copies nothing of the answer (self-healing needs no more).
	ObserveResponse bool
}

// Stats are the proxy's totals since New.
type Stats struct {
	Requests  uint64 // requests received from clients
	Failures  uint64 // answers the proxy itself generated as 502/503
	Retries   uint64 // requests sent a second time (new primary or fallback)
	Fallbacks uint64 // retries that went to the fallback
	Inspected uint64 // requests shown to Hooks.Inspect or Hooks.Admit
	Blocked   uint64 // requests answered by Hooks.Inspect
}

// Proxy is a reverse proxy to one primary backend at a time.
type Proxy struct {
	log     *slog.Logger
	bodyCap int
	wait    time.Duration

	primary  atomic.Pointer[Backend]
	fallback atomic.Pointer[Backend]
	hooks    atomic.Pointer[hookSet] // nil when the hooks are zero

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when the primary changes

	srv *server

	nextID                                         atomic.Uint64
	nFail, nRetry, nFallback, nInspected, nBlocked atomic.Uint64
	waiting                                        atomic.Int64 // requests in waitPrimary's slow path (tests await it)
}

// New returns a proxy with no primary.
func New(opts Options) *Proxy {
	p := &Proxy{
		log:     opts.Logger,
		bodyCap: opts.BodyCap,
		wait:    opts.WaitForBackend,
		changed: make(chan struct{}),
	}
	if p.bodyCap <= 0 {
		p.bodyCap = defaultBodyCap
	}
	if p.wait <= 0 {
		p.wait = defaultWait
	}
	if p.log != nil {
		p.log = p.log.With("component", "proxy")
	}
	p.srv = newServer(p)
	return p
}

// Serve accepts connections on ln and proxies their requests until ln
// fails or Shutdown is called. It may run for several listeners at once.
func (p *Proxy) Serve(ln net.Listener) error { return p.srv.serve(ln) }

// Shutdown stops accepting, lets in-flight requests finish, and closes the
// client connections; it returns ctx's error if they do not finish in time.
func (p *Proxy) Shutdown(ctx context.Context) error { return p.srv.shutdownAll(ctx) }

// SetPrimary makes new requests go to b; nil means none, and requests then
// wait up to WaitForBackend for one.
func (p *Proxy) SetPrimary(b *Backend) {
	p.mu.Lock()
	p.primary.Store(b)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// SetFallback sets where idempotent requests that fail on the primary
// (connection error before a response, or 5xx) are retried once; nil = none.
func (p *Proxy) SetFallback(b *Backend) { p.fallback.Store(b) }

// SetHooks swaps the hooks atomically.
func (p *Proxy) SetHooks(h Hooks) {
	if h.Inspect == nil && h.Observe == nil && h.Admit == nil && h.Complete == nil {
		p.hooks.Store(nil)
		return
	}
	p.hooks.Store(newHookSet(h))
}

// Hooks returns the hooks now set.
func (p *Proxy) Hooks() Hooks {
	if h := p.hooks.Load(); h != nil {
		return h.Hooks
	}
	return Hooks{}
}

// Stats returns the proxy's totals.
func (p *Proxy) Stats() Stats {
	return Stats{
		Requests:  p.nextID.Load(), // one ID per request received
		Failures:  p.nFail.Load(),
		Retries:   p.nRetry.Load(),
		Fallbacks: p.nFallback.Load(),
		Inspected: p.nInspected.Load(),
		Blocked:   p.nBlocked.Load(),
	}
}

// waitPrimary returns the primary, waiting up to WaitForBackend when there
// is none or it is not (a closed backend); nil when none came.
func (p *Proxy) waitPrimary(not *Backend) *Backend {
	if b := p.primary.Load(); b != nil && b != not {
		return b
	}
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	timer := time.NewTimer(p.wait)
	defer timer.Stop()
	for {
		p.mu.Lock()
		b, ch := p.primary.Load(), p.changed
		p.mu.Unlock()
		if b != nil && b != not {
			return b
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil
		}
	}
}

func (p *Proxy) logf(msg string, args ...any) {
	if p.log != nil {
		p.log.Debug(msg, args...)
	}
}

func (p *Proxy) warn(msg string, args ...any) {
	if p.log != nil {
		p.log.Warn(msg, args...)
	}
}
