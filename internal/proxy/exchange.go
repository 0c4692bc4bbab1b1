package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
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
	reqBody bodyReader
	rspBody bodyReader
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

var ctxBackground = context.Background()

// run handles the request whose head is the first n buffered bytes; it
// reports whether the client connection stays open.
func (x *exchange) run(n int) bool {
	cc, p := x.cc, x.cc.p
	x.id = p.nextID.Add(1)
	x.start = time.Now()
	x.headBuf = append(x.headBuf[:0], cc.in.buffered()[:n]...)
	cc.in.r += n
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

	mode := frameNone
	x.bodyLen = 0
	switch {
	case hd.Chunked:
		mode = frameChunked
		x.bodyLen = -1
	case hd.ContentLength >= 0:
		mode = frameLength
		x.bodyLen = hd.ContentLength
	}
	x.reqBody.init(&cc.in, mode, hd.ContentLength)
	x.capLen.Store(0)
	need := 0
	if mode == frameChunked || hd.ContentLength > 0 {
		need = p.bodyCap
		if mode == frameLength && hd.ContentLength < int64(need) {
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
	buffered := x.reqBody.done
	if !buffered {
		block := mode == frameLength && hd.ContentLength <= int64(p.bodyCap) || hooks != nil && hooks.InspectBody
		if hd.Expect100 && block && len(cc.in.buffered()) == 0 {
			if _, err := cc.c.Write(continueLine); err != nil {
				return false
			}
			hd.Expect100 = false
		}
		if err := x.preread(block); err != nil {
			cc.writeError(http.StatusBadRequest, "bad request body")
			return false
		}
		buffered = x.reqBody.done
		if buffered && mode == frameChunked {
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
			cc.c.Write(errorResponse(x.wbuf[:0], http.StatusServiceUnavailable, "no backend available", !buffered))
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
			cc.c.Write(errorResponse(x.wbuf[:0], http.StatusBadGateway, "bad gateway", !buffered))
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

// admitted is Admit's and Inspect's copy of the request.
func (x *exchange) admitted() *Request {
	if x.insp == nil {
		req := x.snapshot(0)
		x.insp = &req
	}
	return x.insp
}

// answer writes Inspect's answer instead of proxying; it reports whether
// the client connection stays open (only when the body was read whole).
func (x *exchange) answer(ans *Answer, buffered bool) bool {
	cc, hd := x.cc, &x.hd
	keep := buffered && !hd.Close && !cc.s.isClosing()
	return cc.writeAnswer(ans, keep, hd.Minor) && keep
}

// crashGrace is how long a request that failed on the primary waits for
// the supervisor to notice a crash (SetPrimary to nil or to a
// replacement) before it is answered 502.
const crashGrace = 250 * time.Millisecond

// waitReplacement returns the backend that replaces failed: the primary
// once it is another one, waiting up to crashGrace for the supervisor to
// react and then, if it took failed away, up to WaitForBackend for the
// replacement. nil when failed stays primary or nothing replaces it.
func (p *Proxy) waitReplacement(failed *Backend) *Backend {
	timer := time.NewTimer(crashGrace)
	defer timer.Stop()
	for {
		p.mu.Lock()
		cur, ch := p.primary.Load(), p.changed
		p.mu.Unlock()
		switch {
		case cur != nil && cur != failed:
			return cur
		case cur == nil || failed.isClosed():
			return p.waitPrimary(failed)
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil
		}
	}
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
	if in := &x.cc.in; len(in.b) > rbufSize && len(in.buffered()) <= rbufSize {
		nb := make([]byte, rbufSize)
		in.w = copy(nb, in.buffered())
		in.r = 0
		in.b = nb
	}
}

// idempotent reports whether a request may be sent twice (its body, if
// any, being held whole).
func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE":
		return true
	}
	return false
}

// retryTarget picks where a failed request goes: the new primary if it
// changed, else the fallback; a request that failed on a reused
// connection may go again to the same backend on a fresh one (the backend
// may have closed the idle connection as the request went out).
func (p *Proxy) retryTarget(failed *Backend, serverError, reused bool) *Backend {
	if !serverError {
		if nb := p.primary.Load(); nb != nil && nb != failed {
			return nb
		}
	}
	if fb := p.fallback.Load(); fb != nil && fb != failed {
		p.nFallback.Add(1)
		return fb
	}
	if reused && !serverError && !failed.isClosed() {
		return failed
	}
	return nil
}

// preread copies body data into the capture buffer: all of it up to the
// cap when block is set, else only what has already arrived.
func (x *exchange) preread(block bool) error {
	for int(x.capLen.Load()) < len(x.capBuf) {
		p, err := x.reqBody.nextBuffered(len(x.capBuf) - int(x.capLen.Load()))
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
			if err := x.reqBody.fill(); err != nil {
				return err
			}
			continue
		}
		x.capture(p)
	}
	// At the cap: a body of exactly the cap's length may have ended.
	if !x.reqBody.done && x.reqBody.mode == frameChunked {
		if _, err := x.reqBody.nextBuffered(0); err != nil && err != io.EOF {
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

// forward sends the request to b and relays the answer to the client. It
// releases b's flight before returning.
func (x *exchange) forward(b *Backend, buffered bool, hooks *hookSet, mayRetry bool) (out outcome, keep, reused bool) {
	cc, p := x.cc, x.cc.p
	hd := &x.hd
	u, err := b.get(ctxBackground, !mayRetry)
	if err != nil {
		b.release(&x.fl, nil)
		return outNotSent, false, false
	}
	reused = u.reused
	// h2c is not passed through: the backend then answers in HTTP/1.1, and
	// each request keeps going through routing and hooks.
	upgrade := hd.ConnUpgrade && len(hd.Upgrade) > 0 && !http1.EqualFold(hd.Upgrade, "h2c")

	// Request head (and the held body) in one write.
	w := x.appendRequestHead(x.wbuf[:0], buffered, upgrade)
	body := x.capBuf[:x.capLen.Load()]
	if !buffered && x.reqBody.mode == frameChunked {
		if len(body) > 0 {
			w = appendChunk(w, body)
		}
	} else {
		w = append(w, body...)
	}
	x.wbuf = w
	if _, err := u.c.Write(w); err != nil {
		u.c.Close()
		b.releaseLost(&x.fl)
		return outNoResponse, false, reused
	}
	var pump chan error
	if !buffered {
		if hd.Expect100 && len(cc.in.buffered()) == 0 {
			// The client waits for this before it sends the body. Written
			// here, before the pump starts, so it cannot interleave with
			// an early answer.
			hd.Expect100 = false
			if _, err := cc.c.Write(continueLine); err != nil {
				u.c.Close()
				b.release(&x.fl, nil)
				return outDone, false, reused
			}
		}
		pump = make(chan error, 1)
		go x.pump(u, pump)
	}

	// Response head; interim 1xx answers other than 101 are dropped.
	before := u.in.n - int64(len(u.in.buffered()))
	var n int
	for {
		n, err = u.in.readHead()
		if err == nil {
			err = x.rh.ParseResponse(u.in.buffered()[:n])
		}
		if err != nil || x.rh.Status >= 200 || x.rh.Status == 101 {
			break
		}
		u.in.r += n
	}
	if err == nil && x.rh.Status == 101 && !upgrade {
		err = http1.ErrBadHead // switching protocols unasked: nothing to relay
	}
	if err != nil {
		u.c.Close()
		pumpErr := waitPump(pump)
		b.releaseLost(&x.fl)
		if u.in.n == before && pump == nil {
			return outNoResponse, false, reused
		}
		if pumpErr != nil && errors.Is(pumpErr, errClientGone) {
			return outDone, false, reused
		}
		p.nFail.Add(1)
		b.nFail.Add(1)
		cc.c.Write(errorResponse(x.wbuf[:0], http.StatusBadGateway, "bad gateway", true))
		return outDone, false, reused
	}
	if x.rh.Status >= 500 && mayRetry && pump == nil {
		if fb := p.fallback.Load(); fb != nil && fb != b {
			u.c.Close()
			b.release(&x.fl, nil)
			return outServerError, false, reused
		}
	}
	u.in.r += n

	if upgrade && x.rh.Status == http.StatusSwitchingProtocols {
		waitPump(pump) // an upgrade request carries no body worth waiting for
		x.tunnel(b, u)
		return outDone, false, reused
	}
	x.upBroken = false
	x.rhBuf = u.in.b[u.in.r-n : u.in.r]
	keep, upOK := x.relay(b, u, hooks, buffered)
	if pump != nil {
		if err := <-pump; err != nil {
			keep, upOK = false, false
		}
	}
	if upOK && x.rh.Minor == 1 && !x.rh.Close && !upgrade && len(u.in.buffered()) == 0 {
		b.release(&x.fl, u)
	} else {
		u.c.Close()
		if x.upBroken {
			b.releaseLost(&x.fl)
		} else {
			b.release(&x.fl, nil)
		}
	}
	if x.observed {
		// After the client has its answer and the pump is done, so the
		// request copy is complete.
		x.observed = false
		hooks.complete(&x.doneView, &x.rsp)
	}
	return outDone, keep, reused
}

func waitPump(pump chan error) error {
	if pump == nil {
		return nil
	}
	return <-pump
}

// pump streams the rest of a request body that was not held whole.
func (x *exchange) pump(u *upconn, done chan<- error) {
	chunked := x.reqBody.mode == frameChunked
	var w []byte // pump's own batch; the main goroutine uses x.wbuf
	for {
		piece, err := x.reqBody.nextBuffered(ioSize)
		if err == io.EOF {
			if chunked {
				w = append(w, lastChunk...)
			}
			if len(w) > 0 {
				if _, err := u.c.Write(w); err != nil {
					done <- err
					return
				}
			}
			done <- nil
			return
		}
		if err != nil {
			u.c.Close()
			done <- errors.Join(errClientGone, err)
			return
		}
		if piece == nil {
			if len(w) > 0 {
				if _, err := u.c.Write(w); err != nil {
					done <- err
					return
				}
				w = w[:0]
			}
			x.cc.extendDeadline()
			if err := x.reqBody.fill(); err != nil {
				u.c.Close()
				done <- errors.Join(errClientGone, err)
				return
			}
			continue
		}
		x.capture(piece)
		if chunked {
			w = appendChunk(w, piece)
		} else {
			w = append(w, piece...)
		}
		if len(w) >= ioSize {
			if _, err := u.c.Write(w); err != nil {
				done <- err
				return
			}
			w = w[:0]
		}
	}
}

// relay writes the response whose head is in x.rh to the client, streaming
// its body. keep reports whether the client connection may carry another
// request; upOK whether the upstream connection ended cleanly between
// messages.
func (x *exchange) relay(b *Backend, u *upconn, hooks *hookSet, reqDone bool) (keep, upOK bool) {
	cc, p := x.cc, x.cc.p
	hd, rh := &x.hd, &x.rh
	mode := frameClose
	switch {
	case string(hd.Method) == "HEAD" || rh.Status < 200 || rh.Status == 204 || rh.Status == 304:
		mode = frameNone
	case rh.Chunked:
		mode = frameChunked
	case rh.ContentLength >= 0:
		mode = frameLength
	}
	x.rspBody.init(&u.in, mode, rh.ContentLength)
	rechunk := (mode == frameChunked || mode == frameClose) && hd.Minor == 1
	keep = reqDone && !hd.Close && !cc.s.isClosing() && (hd.Minor == 1 || mode == frameNone || mode == frameLength)

	w := x.appendResponseHead(x.wbuf[:0], mode, rechunk, keep)
	observe := hooks != nil && hooks.complete != nil
	copyResp := observe && hooks.ObserveResponse
	var rcap []byte
	var rhdr http.Header
	if copyResp {
		rhdr = x.responseHeader() // before the body overwrites the head's bytes
	}
	var total int64
	for {
		piece, err := x.rspBody.nextBuffered(ioSize)
		if err == io.EOF {
			break
		}
		if err != nil {
			x.wbuf = w
			return x.abort(b, w)
		}
		if piece == nil {
			if len(w) > 0 {
				if _, err := cc.c.Write(w); err != nil {
					x.wbuf = w
					return false, false
				}
				w = w[:0]
			}
			if err := x.rspBody.fill(); err != nil {
				x.wbuf = w
				return x.abort(b, nil)
			}
			continue
		}
		total += int64(len(piece))
		if copyResp && len(rcap) < p.bodyCap {
			rcap = append(rcap, piece[:min(len(piece), p.bodyCap-len(rcap))]...)
		}
		if rechunk {
			w = appendChunk(w, piece)
		} else {
			w = append(w, piece...)
		}
		if len(w) >= ioSize {
			if _, err := cc.c.Write(w); err != nil {
				x.wbuf = w
				return false, false
			}
			w = w[:0]
		}
	}
	if rechunk {
		w = append(w, lastChunk...)
	}
	if len(w) > 0 {
		if _, err := cc.c.Write(w); err != nil {
			x.wbuf = w
			return false, false
		}
	}
	x.wbuf = w
	if observe {
		x.rsp = Response{Status: rh.Status, Header: rhdr, Body: rcap, BodyLen: total, Latency: time.Since(x.start)}
		x.observed = true
	}
	return keep, mode != frameClose
}

// abort ends a response whose body broke off upstream: what was batched
// goes out, then the client connection is closed so the client cannot take
// the truncated answer for a complete one.
func (x *exchange) abort(b *Backend, pending []byte) (keep, upOK bool) {
	if len(pending) > 0 {
		x.cc.c.Write(pending)
	}
	x.upBroken = true
	b.nFail.Add(1)
	return false, false
}

// completed is Complete's and Observe's copy of the finished request; the
// client has its whole answer by now.
func (x *exchange) completed() *Request {
	if x.done != nil {
		return x.done
	}
	// The snapshot Inspect saw is the same request unless more of a
	// streamed body was captured since: share its parts (hooks treat
	// requests as read-only) rather than materialize it a second time.
	var req Request
	if x.insp != nil && int64(len(x.insp.Body)) == x.capLen.Load() {
		req = *x.insp
		req.Gen = x.gen
		req.BodyLen = x.bodyLen
	} else {
		req = x.snapshot(x.gen)
	}
	if x.reqBody.done && req.BodyLen < 0 {
		req.BodyLen = x.reqBody.bytes
	}
	x.done = &req
	return x.done
}

// appendRequestHead writes the upstream request head: hop-by-hop fields
// dropped, X-Forwarded-For extended, framing restated.
func (x *exchange) appendRequestHead(w []byte, buffered, upgrade bool) []byte {
	hd := &x.hd
	w = append(w, hd.Method...)
	w = append(w, ' ')
	w = append(w, hd.Target...)
	w = append(w, " HTTP/1.1\r\n"...)
	w = appendEndToEnd(w, hd.Fields)
	w = x.appendXFF(w)
	switch {
	case buffered && (x.reqBody.mode != frameNone):
		w = append(w, "Content-Length: "...)
		w = strconv.AppendInt(w, x.capLen.Load(), 10)
		w = append(w, '\r', '\n')
	case x.reqBody.mode == frameChunked:
		w = append(w, "Transfer-Encoding: chunked\r\n"...)
	case x.reqBody.mode == frameLength:
		w = append(w, "Content-Length: "...)
		w = strconv.AppendInt(w, hd.ContentLength, 10)
		w = append(w, '\r', '\n')
	}
	if upgrade {
		w = append(w, "Connection: Upgrade\r\nUpgrade: "...)
		w = append(w, hd.Upgrade...)
		w = append(w, '\r', '\n')
	}
	return append(w, '\r', '\n')
}

func (x *exchange) appendXFF(w []byte) []byte {
	ip := x.cc.ip
	if ip == nil && x.hd.XFFCount == 0 {
		return w
	}
	w = append(w, "X-Forwarded-For: "...)
	first := true
	if x.hd.XFFCount > 0 {
		for i := range x.hd.Fields {
			f := &x.hd.Fields[i]
			if len(f.Name) == 15 && http1.EqualFold(f.Name, "x-forwarded-for") {
				if !first {
					w = append(w, ", "...)
				}
				w = append(w, f.Value...)
				first = false
			}
		}
	}
	if ip != nil {
		if !first {
			w = append(w, ", "...)
		}
		w = append(w, ip...)
	}
	return append(w, '\r', '\n')
}

// appendResponseHead writes the client's response head.
func (x *exchange) appendResponseHead(w []byte, mode int, rechunk, keep bool) []byte {
	rh := &x.rh
	w = append(w, "HTTP/1.1 "...)
	w = strconv.AppendInt(w, int64(rh.Status), 10)
	w = append(w, ' ')
	w = append(w, rh.Reason...)
	w = append(w, '\r', '\n')
	w = appendEndToEnd(w, rh.Fields)
	switch {
	case mode == frameLength || (mode == frameNone && rh.ContentLength >= 0):
		w = append(w, "Content-Length: "...)
		w = strconv.AppendInt(w, rh.ContentLength, 10)
		w = append(w, '\r', '\n')
	case rechunk || (mode == frameNone && rh.Chunked):
		w = append(w, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case !keep:
		w = append(w, "Connection: close\r\n"...)
	case x.hd.Minor == 0:
		w = append(w, "Connection: keep-alive\r\n"...)
	}
	return append(w, '\r', '\n')
}

// snapshot materializes the request as a Request (hooks, InFlight). It
// runs once or twice per request when hooks are set, so it allocates little:
// the head is converted to one string that every header name and value,
// the path and the query are cut from, and the header values share one
// backing array.
func (x *exchange) snapshot(gen int) Request {
	hd := &x.hd
	head := string(x.headBuf)
	path, query := splitTarget(within(head, x.headBuf, hd.Target))
	n := 0
	for i := range hd.Fields {
		if !hd.Fields[i].Hop {
			n++
		}
	}
	r := Request{
		ID:       x.id,
		Time:     x.start,
		Gen:      gen,
		Method:   within(head, x.headBuf, hd.Method),
		Path:     path,
		RawQuery: query,
		Header:   make(http.Header, n+1),
		BodyLen:  x.bodyLen,
	}
	vals := make([]string, n+1) // the last one for X-Forwarded-For
	for i := range hd.Fields {
		f := &hd.Fields[i]
		if f.Hop {
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(within(head, x.headBuf, f.Name))
		v := within(head, x.headBuf, f.Value)
		if old, ok := r.Header[k]; ok {
			r.Header[k] = append(old, v)
			continue
		}
		n--
		vals[n] = v
		r.Header[k] = vals[n : n+1 : n+1]
	}
	var xbuf [128]byte
	if xff := x.appendXFF(xbuf[:0]); len(xff) > 0 {
		last := len(vals) - 1
		vals[last] = string(xff[len("X-Forwarded-For: ") : len(xff)-2])
		r.Header["X-Forwarded-For"] = vals[last:]
	}
	if n := x.capLen.Load(); n > 0 {
		r.Body = append([]byte(nil), x.capBuf[:n]...)
	}
	return r
}

// within returns b, a slice of buf, as the same bytes of s (string(buf)),
// without copying; a b from elsewhere is copied.
func within(s string, buf, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	off := cap(buf) - cap(b)
	if off >= 0 && off+len(b) <= len(buf) && &buf[off] == &b[0] {
		return s[off : off+len(b)]
	}
	return string(b)
}

func (x *exchange) responseHeader() http.Header {
	head := string(x.rhBuf)
	h := make(http.Header, len(x.rh.Fields)+1)
	vals := make([]string, len(x.rh.Fields)+1) // the last one for Content-Length
	n := len(vals) - 1
	for i := range x.rh.Fields {
		f := &x.rh.Fields[i]
		if f.Hop {
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(within(head, x.rhBuf, f.Name))
		v := within(head, x.rhBuf, f.Value)
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		n--
		vals[n] = v
		h[k] = vals[n : n+1 : n+1]
	}
	if x.rh.ContentLength >= 0 {
		last := len(vals) - 1
		vals[last] = strconv.FormatInt(x.rh.ContentLength, 10)
		h["Content-Length"] = vals[last:]
	}
	return h
}

// splitTarget returns the decoded path and raw query of a request target
// (origin form, absolute form or "*").
func splitTarget(s string) (path, query string) {
	if len(s) > 0 && s[0] != '/' && s != "*" {
		// absolute form: scheme://authority/path?query
		if i := indexString(s, "://"); i >= 0 {
			s = s[i+3:]
			if j := indexAny(s, "/?"); j >= 0 {
				s = s[j:]
			} else {
				s = "/"
			}
		}
	}
	if i := indexString(s, "?"); i >= 0 {
		s, query = s[:i], s[i+1:]
	}
	if p, err := url.PathUnescape(s); err == nil {
		s = p
	}
	if s == "" {
		s = "/"
	}
	return s, query
}

func indexString(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func indexAny(s, chars string) int {
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(chars); j++ {
			if s[i] == chars[j] {
				return i
			}
		}
	}
	return -1
}

// writeAnswer writes an Inspect answer.
func (cc *clientConn) writeAnswer(a *Answer, keep bool, minor int) bool {
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	w := append([]byte(nil), "HTTP/1.1 "...)
	w = strconv.AppendInt(w, int64(status), 10)
	w = append(w, ' ')
	w = append(w, http.StatusText(status)...)
	w = append(w, '\r', '\n')
	for k, vs := range a.Header {
		switch textproto.CanonicalMIMEHeaderKey(k) {
		case "Content-Length", "Connection", "Transfer-Encoding":
			continue
		}
		for _, v := range vs {
			w = append(w, k...)
			w = append(w, ": "...)
			w = append(w, v...)
			w = append(w, '\r', '\n')
		}
	}
	w = append(w, "Content-Length: "...)
	w = strconv.AppendInt(w, int64(len(a.Body)), 10)
	w = append(w, '\r', '\n')
	if !keep {
		w = append(w, "Connection: close\r\n"...)
	} else if minor == 0 {
		w = append(w, "Connection: keep-alive\r\n"...)
	}
	w = append(w, '\r', '\n')
	w = append(w, a.Body...)
	_, err := cc.c.Write(w)
	return err == nil
}

// errorResponse appends a plain-text answer generated by the proxy.
func errorResponse(w []byte, status int, msg string, closeConn bool) []byte {
	w = append(w, "HTTP/1.1 "...)
	w = strconv.AppendInt(w, int64(status), 10)
	w = append(w, ' ')
	w = append(w, http.StatusText(status)...)
	w = append(w, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	w = strconv.AppendInt(w, int64(len(msg)+1), 10)
	if closeConn {
		w = append(w, "\r\nConnection: close"...)
	}
	w = append(w, "\r\n\r\n"...)
	w = append(w, msg...)
	return append(w, '\n')
}

var _ net.Conn = (*net.TCPConn)(nil)

// appendEndToEnd writes the header fields that are not hop-by-hop, as
// received, for the request and the response heads alike.
func appendEndToEnd(w []byte, fields []http1.Field) []byte {
	for i := range fields {
		f := &fields[i]
		if f.Hop {
			continue
		}
		w = append(w, f.Name...)
		w = append(w, ": "...)
		w = append(w, f.Value...)
		w = append(w, '\r', '\n')
	}
	return w
}
