package http1

import "testing"

// FuzzParseResponse: never panics; accepted status lines are in range.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.0 404\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, _, err := HeadEnd(in, 0)
		if err != nil {
			return
		}
		var h Head
		if err := h.ParseResponse(in[:n]); err != nil {
			return
		}
		if h.Status < 100 || h.Status > 999 || (h.Chunked && h.ContentLength >= 0) {
			t.Fatalf("accepted %q as status %d chunked=%v length=%d", in[:n], h.Status, h.Chunked, h.ContentLength)
		}
	})
}

// FuzzParseRequestHead: never panics; an accepted head has one framing.
func FuzzParseRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nConnection: x, close\r\nX: 1\r\n\r\n",
		"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, _, err := HeadEnd(in, 0)
		if err != nil {
			return
		}
		var h Head
		if err := h.ParseRequest(in[:n]); err != nil {
			return
		}
		if h.Chunked && h.ContentLength >= 0 || len(h.Method) == 0 || len(h.Target) == 0 {
			t.Fatalf("accepted %q: %+v", in[:n], h)
		}
	})
}

func TestHeadEnd(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want error
	}{
		{"GET / HTTP/1.1\r\n\r\n", 18, nil},
		{"GET / HTTP/1.1\r\nA: b\r\n\r\nbody", 24, nil},
		{"GET / HTTP/1.1\r\nA: b\r\n", 0, ErrNeedMore},
		{"GET / HTTP/1.1\nA: b\r\n\r\n", 0, ErrBadHead},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, _, err := HeadEnd([]byte(tt.in), 0)
			if n != tt.n || err != tt.want {
				t.Fatalf("HeadEnd = %d, %v; want %d, %v", n, err, tt.n, tt.want)
			}
		})
	}
}
