package proxy

import (
	"bytes"
	"testing"

	"github.com/graftdev/graft/internal/proxy/http1"
)

var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\n\r\nabc",
	"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
	"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
}

// FuzzParseRequest: the parser never panics, and a head it accepts, once
// forwarded (hop-by-hop fields dropped, framing restated), parses again to
// the same method, target, end-to-end fields and framing.
func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, _, err := http1.HeadEnd(in, 0)
		if err != nil {
			return
		}
		var x exchange
		x.cc = &clientConn{ip: []byte("127.0.0.1")}
		if err := x.hd.ParseRequest(in[:n]); err != nil {
			return
		}
		mode := http1.FrameNone
		switch {
		case x.hd.Chunked:
			mode = http1.FrameChunked
		case x.hd.ContentLength >= 0:
			mode = http1.FrameLength
		}
		x.reqBody.Init(nil, mode, x.hd.ContentLength)
		out := x.appendRequestHead(nil, false, x.hd.ConnUpgrade && len(x.hd.Upgrade) > 0)
		n2, _, err := http1.HeadEnd(out, 0)
		if err != nil || n2 != len(out) {
			t.Fatalf("forwarded head does not end where it should: %v\n%q", err, out)
		}
		var h2 http1.Head
		if err := h2.ParseRequest(out); err != nil {
			t.Fatalf("forwarded head does not parse: %v\n%q", err, out)
		}
		if !bytes.Equal(h2.Method, x.hd.Method) || !bytes.Equal(h2.Target, x.hd.Target) || h2.Minor != 1 {
			t.Fatalf("request line changed: %q", out)
		}
		if h2.Chunked != x.hd.Chunked || h2.ContentLength != x.hd.ContentLength {
			t.Fatalf("framing changed: %v/%d → %v/%d", x.hd.Chunked, x.hd.ContentLength, h2.Chunked, h2.ContentLength)
		}
		var a, b [][]byte
		for _, f := range x.hd.Fields {
			if !f.Hop {
				a = append(a, f.Name, f.Value)
			}
		}
		for _, f := range h2.Fields {
			if !f.Hop {
				b = append(b, f.Name, f.Value)
			}
		}
		if len(a) != len(b) {
			t.Fatalf("end-to-end fields changed:\n%q\n%q", a, b)
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("field %d changed: %q → %q", i, a[i], b[i])
			}
		}
	})
}
