package proxy

import (
	"net"
	"net/http"
	"strconv"

	"github.com/graftdev/graft/internal/proxy/http1"
)

// appendRequestHead writes the upstream request head: hop-by-hop fields
// dropped, X-Forwarded-For extended, framing restated.
func (x *exchange) appendRequestHead(w []byte, buffered, upgrade bool) []byte {
	hd := &x.hd
	w = append(w, hd.Method...)
	w = append(w, ' ')
	w = append(w, hd.Target...)
	w = append(w, " HTTP/1.1\r\n"...)
	w = http1.AppendEndToEnd(w, hd.Fields)
	w = x.appendXFF(w)
	switch {
	case buffered && (x.reqBody.Mode() != http1.FrameNone):
		w = append(w, "Content-Length: "...)
		w = strconv.AppendInt(w, x.capLen.Load(), 10)
		w = append(w, '\r', '\n')
	case x.reqBody.Mode() == http1.FrameChunked:
		w = append(w, "Transfer-Encoding: chunked\r\n"...)
	case x.reqBody.Mode() == http1.FrameLength:
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

// writeAnswer writes an Inspect answer.
func (cc *clientConn) writeAnswer(a *Answer, keep bool, minor int) bool {
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	w := http1.AppendAnswer(nil, status, a.Header, a.Body, keep, minor)
	_, err := cc.c.Write(w)
	return err == nil
}

var _ net.Conn = (*net.TCPConn)(nil)
