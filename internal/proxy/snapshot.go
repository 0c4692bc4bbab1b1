package proxy

import (
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/graftdev/graft/internal/proxy/http1"
)

// admitted is Admit's and Inspect's copy of the request.
func (x *exchange) admitted() *Request {
	if x.insp == nil {
		req := x.snapshot(0)
		x.insp = &req
	}
	return x.insp
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
	if x.reqBody.Done() && req.BodyLen < 0 {
		req.BodyLen = x.reqBody.Bytes()
	}
	x.done = &req
	return x.done
}

// snapshot materializes the request as a Request (hooks, InFlight). It
// runs once or twice per request when hooks are set, so it allocates little:
// the head is converted to one string that every header name and value,
// the path and the query are cut from, and the header values share one
// backing array.
func (x *exchange) snapshot(gen int) Request {
	hd := &x.hd
	head := string(x.headBuf)
	path, query := http1.SplitTarget(within(head, x.headBuf, hd.Target))
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
