package proxy

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/internal/proxy/http1"
)

// exchange is one request/response through the proxy; a client
// connection reuses one for all its requests, so the hot path allocates
// nothing when no hook is set.
type exchange struct {
	cc *clientConn
	fl flight

	// Immutable while the request is in flight (InFlight reads them under
	// the backend's lock).
	id      uint64
	gen     int
	start   time.Time
	hd      http1.Head
	headBuf []byte
	bodyLen int64
	capBuf  []byte       // full-length buffer; capLen bytes of body copied so far
	capLen  atomic.Int64 // published after the bytes are written

	rsp      Response // the answer for the Complete and Observe hooks
	observed bool     // rsp holds this request's answer, once relayed
	shown    bool     // the request has been shown to the hooks (Stats.Inspected)
	insp     *Request // Admit's copy, shown again on re-checks; nil until asked for
	done     *Request // Complete's copy; nil until asked for
	upBroken bool     // the backend's answer broke off mid-body

	admitView, doneView View

	rh      http1.Head
	rhBuf   []byte // rh's bytes in the upstream buffer, until its body is read
	reqBody http1.BodyReader
	rspBody http1.BodyReader
	wbuf    []byte
}

// outcome of one attempt to forward a request to a backend.
type outcome int

const (
	outDone        outcome = iota // an answer was relayed (or the client is gone)
	outNotSent                    // no connection: nothing reached the backend
	outNoResponse                 // sent (maybe in part); not one response byte came back
	outServerError                // a 5xx head arrived and nothing was relayed yet
)

func (o outcome) String() string {
	switch o {
	case outDone:
		return "done"
	case outNotSent:
		return "no connection"
	case outNoResponse:
		return "no response"
	case outServerError:
		return "server error"
	}
	return "unknown"
}

// run handles the request whose head is the first n buffered bytes; it
// reports whether the client connection stays open.
func (x *exchange) run(n int) bool {
	cc, p := x.cc, x.cc.p
	x.id = p.nextID.Add(1)
	x.start = time.Now()
	x.headBuf = append(x.headBuf[:0], cc.in.Buffered()[:n]...)
	cc.in.Discard(n)
	if err := x.hd.ParseRequest(x.headBuf); err != nil {
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, http1.ErrBadVersion):
			status = http.StatusHTTPVersionNotSupported
		case errors.Is(err, http1.ErrBadEncoding) && x.hd.Minor == 1:
			status = http.StatusNotImplemented
		}
		cc.writeError(status, err.Error())
		return false
	}
	hd := &x.hd
	if string(hd.Method) == "CONNECT" {
		cc.writeError(http.StatusMethodNotAllowed, "CONNECT is not supported")
		return false
	}

	mode := http1.FrameNone
	x.bodyLen = 0
	switch {
	case hd.Chunked:
		mode = http1.FrameChunked
		x.bodyLen = -1
	case hd.ContentLength >= 0:
		mode = http1.FrameLength
		x.bodyLen = hd.ContentLength
	}
	x.reqBody.Init(&cc.in, mode, hd.ContentLength)
	x.capLen.Store(0)
	need := 0
	if mode == http1.FrameChunked || hd.ContentLength > 0 {
		need = p.bodyCap
		if mode == http1.FrameLength && hd.ContentLength < int64(need) {
			need = int(hd.ContentLength)
		}
	}
	if cap(x.capBuf) < need {
		x.capBuf = make([]byte, need)
	}
	x.capBuf = x.capBuf[:need]

	hooks := p.hooks.Load()
	// A body held whole can be sent twice (retries) and in one write. A
	// known length within the cap is read before routing (as nginx buffers
	// request bodies); a chunked body only as far as it already arrived,
	// unless Inspect wants it, so a slow stream still streams.
	buffered := x.reqBody.Done()
	if !buffered {
		block := mode == http1.FrameLength && hd.ContentLength <= int64(p.bodyCap) || hooks != nil && hooks.InspectBody
		if hd.Expect100 && block && len(cc.in.Buffered()) == 0 {
			if _, err := cc.c.Write(continueLine); err != nil {
				return false
			}
			hd.Expect100 = false
		}
		if err := x.preread(block); err != nil {
			cc.writeError(http.StatusBadRequest, "bad request body")
			return false
		}
		buffered = x.reqBody.Done()
		if buffered && mode == http1.FrameChunked {
			x.bodyLen = x.capLen.Load()
		}
	}

	x.insp, x.done, x.shown, x.observed = nil, nil, false, false
	if hooks != nil && hooks.admit != nil {
		if ans := x.inspect(hooks); ans != nil {
			return x.answer(ans, buffered)
		}
	}

	retriable := buffered && idempotent(string(hd.Method))
	b := p.primary.Load()
	// cleared is the backend Inspect last let the request go to. A request
	// that waits for a primary or moves to another backend meets Inspect
	// again before it is sent: a seal rule installed meanwhile (for the
	// crash of the generation it was waiting on or failed on) must stop it
	// from crashing the replacement too.
	cleared := b
	if b == nil {
		b = p.waitPrimary(nil)
	}
	retried := false // a second send to a backend has been made
	reroutes := 0    // attempts that sent nothing (no connection)
	moved := false   // count a retry once Inspect let the request go on
	for {
		if b == nil {
			p.nFail.Add(1)
			p.warn("answered 503: no backend", "waited", p.wait)
			cc.c.Write(http1.AppendError(x.wbuf[:0], http.StatusServiceUnavailable, "no backend available", !buffered))
			return buffered && !hd.Close
		}
		if b != cleared {
			// Off the zero-hook fast path: only after a wait or a move.
			hooks = p.hooks.Load()
			if hooks != nil && hooks.admit != nil {
				if ans := x.inspect(hooks); ans != nil {
					return x.answer(ans, buffered)
				}
			}
			cleared = b
		}
		if moved {
			p.nRetry.Add(1)
			moved = false
		}
		x.gen = b.gen
		if !b.acquire(&x.fl) {
			// Closed after we picked it: nothing was sent, so any request,
			// POST included, may go to whoever serves now.
			b = p.waitPrimary(b)
			continue
		}
		out, keep, reused := x.forward(b, buffered, hooks, retriable && !retried)
		if out == outDone {
			return keep
		}
		b.nFail.Add(1)
		var next *Backend
		switch {
		case out == outNotSent && reroutes < 3:
			// Nothing reached the backend: any request may go elsewhere,
			// and this does not use up the one retry.
			reroutes++
			next = p.retryTarget(b, false, false)
			if next == nil {
				next = p.waitReplacement(b)
			}
		case out != outNotSent && retriable && !retried:
			retried = true
			next = p.retryTarget(b, out == outServerError, reused)
			if next == nil && out == outNoResponse {
				next = p.waitReplacement(b)
			}
		}
		if next == nil {
			p.nFail.Add(1)
			p.warn("answered 502: backend failed", "gen", b.gen, "method", string(hd.Method), "outcome", out.String())
			cc.c.Write(http1.AppendError(x.wbuf[:0], http.StatusBadGateway, "bad gateway", !buffered))
			return buffered && !hd.Close
		}
		moved = next != b || out != outNotSent
		b = next
	}
}

// inspect shows the request to Hooks.Admit and Hooks.Inspect. The
// snapshot is taken when a hook first asks for it and shown again on later
// calls, so a re-check before a retry reads no more of the body and Inspect
// sees the same request (same ID) each time.
func (x *exchange) inspect(hooks *hookSet) *Answer {
	p := x.cc.p
	if !x.shown {
		x.shown = true
		p.nInspected.Add(1)
	}
	ans := hooks.admit(&x.admitView)
	if ans != nil {
		p.nBlocked.Add(1)
	}
	return ans
}

// answer writes Inspect's answer instead of proxying; it reports whether
// the client connection stays open (only when the body was read whole).
func (x *exchange) answer(ans *Answer, buffered bool) bool {
	cc, hd := x.cc, &x.hd
	keep := buffered && !hd.Close && !cc.s.isClosing()
	return cc.writeAnswer(ans, keep, hd.Minor) && keep
}

var continueLine = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// keepBuf is the largest buffer an idle connection keeps between
// requests: big bodies grow buffers, and thousands of idle keep-alive
// connections must not each hold on to one.
const keepBuf = 8 << 10

func (x *exchange) trim() {
	x.insp = nil // an idle connection keeps no request copy
	if cap(x.wbuf) > keepBuf {
		x.wbuf = nil
	}
	if cap(x.capBuf) > keepBuf {
		x.capBuf = nil
	}
	if cap(x.headBuf) > keepBuf {
		x.headBuf = nil
	}
	x.cc.in.Shrink()
}

// preread copies body data into the capture buffer: all of it up to the
// cap when block is set, else only what has already arrived.
func (x *exchange) preread(block bool) error {
	for int(x.capLen.Load()) < len(x.capBuf) {
		p, err := x.reqBody.NextBuffered(len(x.capBuf) - int(x.capLen.Load()))
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if p == nil {
			if !block {
				return nil
			}
			if err := x.reqBody.Fill(); err != nil {
				return err
			}
			continue
		}
		x.capture(p)
	}
	// At the cap: a body of exactly the cap's length may have ended.
	if !x.reqBody.Done() && x.reqBody.Mode() == http1.FrameChunked {
		if _, err := x.reqBody.NextBuffered(0); err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// capture copies the start of p into the capture buffer.
func (x *exchange) capture(p []byte) {
	l := int(x.capLen.Load())
	if l < len(x.capBuf) {
		n := copy(x.capBuf[l:], p)
		x.capLen.Store(int64(l + n))
	}
}
