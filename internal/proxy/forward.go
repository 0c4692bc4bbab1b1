package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/graftdev/graft/internal/proxy/http1"
)

var ctxBackground = context.Background()

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
	if !buffered && x.reqBody.Mode() == http1.FrameChunked {
		if len(body) > 0 {
			w = http1.AppendChunk(w, body)
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
		if hd.Expect100 && len(cc.in.Buffered()) == 0 {
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
	before := u.in.Total() - int64(len(u.in.Buffered()))
	var n int
	for {
		n, err = u.in.ReadHead()
		if err == nil {
			err = x.rh.ParseResponse(u.in.Buffered()[:n])
		}
		if err != nil || x.rh.Status >= 200 || x.rh.Status == 101 {
			break
		}
		u.in.Discard(n)
	}
	if err == nil && x.rh.Status == 101 && !upgrade {
		err = http1.ErrBadHead // switching protocols unasked: nothing to relay
	}
	if err != nil {
		u.c.Close()
		pumpErr := waitPump(pump)
		b.releaseLost(&x.fl)
		if u.in.Total() == before && pump == nil {
			return outNoResponse, false, reused
		}
		if pumpErr != nil && errors.Is(pumpErr, errClientGone) {
			return outDone, false, reused
		}
		p.nFail.Add(1)
		b.nFail.Add(1)
		cc.c.Write(http1.AppendError(x.wbuf[:0], http.StatusBadGateway, "bad gateway", true))
		return outDone, false, reused
	}
	if x.rh.Status >= 500 && mayRetry && pump == nil {
		if fb := p.fallback.Load(); fb != nil && fb != b {
			u.c.Close()
			b.release(&x.fl, nil)
			return outServerError, false, reused
		}
	}
	rhead := u.in.Buffered()[:n]
	u.in.Discard(n)

	if upgrade && x.rh.Status == http.StatusSwitchingProtocols {
		waitPump(pump) // an upgrade request carries no body worth waiting for
		x.tunnel(b, u)
		return outDone, false, reused
	}
	x.upBroken = false
	x.rhBuf = rhead
	keep, upOK := x.relay(b, u, hooks, buffered)
	if pump != nil {
		if err := <-pump; err != nil {
			keep, upOK = false, false
		}
	}
	if upOK && x.rh.Minor == 1 && !x.rh.Close && !upgrade && len(u.in.Buffered()) == 0 {
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
	chunked := x.reqBody.Mode() == http1.FrameChunked
	var w []byte // pump's own batch; the main goroutine uses x.wbuf
	for {
		piece, err := x.reqBody.NextBuffered(http1.IOSize)
		if err == io.EOF {
			if chunked {
				w = append(w, http1.LastChunk...)
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
			if err := x.reqBody.Fill(); err != nil {
				u.c.Close()
				done <- errors.Join(errClientGone, err)
				return
			}
			continue
		}
		x.capture(piece)
		if chunked {
			w = http1.AppendChunk(w, piece)
		} else {
			w = append(w, piece...)
		}
		if len(w) >= http1.IOSize {
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
	mode := http1.FrameClose
	switch {
	case string(hd.Method) == "HEAD" || rh.Status < 200 || rh.Status == 204 || rh.Status == 304:
		mode = http1.FrameNone
	case rh.Chunked:
		mode = http1.FrameChunked
	case rh.ContentLength >= 0:
		mode = http1.FrameLength
	}
	x.rspBody.Init(&u.in, mode, rh.ContentLength)
	rechunk := (mode == http1.FrameChunked || mode == http1.FrameClose) && hd.Minor == 1
	keep = reqDone && !hd.Close && !cc.s.isClosing() && (hd.Minor == 1 || mode == http1.FrameNone || mode == http1.FrameLength)

	w := http1.AppendResponseHead(x.wbuf[:0], &x.rh, mode, rechunk, keep, x.hd.Minor)
	observe := hooks != nil && hooks.complete != nil
	copyResp := observe && hooks.ObserveResponse
	var rcap []byte
	var rhdr http.Header
	if copyResp {
		rhdr = x.responseHeader() // before the body overwrites the head's bytes
	}
	var total int64
	for {
		piece, err := x.rspBody.NextBuffered(http1.IOSize)
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
			if err := x.rspBody.Fill(); err != nil {
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
			w = http1.AppendChunk(w, piece)
		} else {
			w = append(w, piece...)
		}
		if len(w) >= http1.IOSize {
			if _, err := cc.c.Write(w); err != nil {
				x.wbuf = w
				return false, false
			}
			w = w[:0]
		}
	}
	if rechunk {
		w = append(w, http1.LastChunk...)
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
	return keep, mode != http1.FrameClose
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

// errClientGone marks a failure to write to the client.
var errClientGone = errors.New("client connection failed")
