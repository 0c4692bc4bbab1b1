package proxy

import (
	"bytes"
	"io"
	"net/http/httputil"
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
		mode := frameNone
		switch {
		case x.hd.Chunked:
			mode = frameChunked
		case x.hd.ContentLength >= 0:
			mode = frameLength
		}
		x.reqBody.mode = mode
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

// decodeAll runs the chunked decoder over in, fed in pieces of at most
// step bytes, with pieces of output of at most max bytes, as the proxy
// does.
func decodeAll(in []byte, step, max int) (out []byte, consumed int, done bool, err error) {
	rb := &rbuf{b: make([]byte, len(in))}
	var br bodyReader
	br.init(rb, frameChunked, -1)
	fed := 0
	for {
		p, err := br.nextBuffered(max)
		if err == io.EOF {
			return out, rb.r, true, nil
		}
		if err != nil {
			return out, rb.r, false, err
		}
		if p != nil {
			out = append(out, p...)
			continue
		}
		if fed == len(in) {
			return out, rb.r, false, nil
		}
		k := min(step, len(in)-fed)
		copy(rb.b[rb.w:], in[fed:fed+k])
		rb.w += k
		fed += k
	}
}

// FuzzChunked: the decoder's result does not depend on how the input is
// split or how small the output pieces are, and agrees with net/http's
// chunked reader on what both accept.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"3\r\nabc\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
		"A\r\n0123456789\r\n0\r\n\r\nNEXT",
		"zz\r\n",
		"3\r\nabcX\r\n",
		"ffffffffffffffff\r\n",
	} {
		f.Add([]byte(s), uint8(1), uint8(2))
	}
	f.Fuzz(func(t *testing.T, in []byte, step, max uint8) {
		whole, wc, wdone, werr := decodeAll(in, len(in)+1, 1<<20)
		split, sc, sdone, serr := decodeAll(in, int(step)+1, int(max)+1)
		if (werr == nil) != (serr == nil) || wdone != sdone || !bytes.Equal(whole, split) {
			t.Fatalf("split changes result: %q/%v/%v vs %q/%v/%v", whole, wdone, werr, split, sdone, serr)
		}
		if wdone && wc != sc {
			t.Fatalf("consumed %d vs %d", wc, sc)
		}
		if !wdone || werr != nil {
			return
		}
		std, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in[:wc])))
		if err == nil && !bytes.Equal(std, whole) {
			t.Fatalf("net/http decodes %q, we decode %q", std, whole)
		}
	})
}
