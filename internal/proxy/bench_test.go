package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

// rawBackend answers every request head it reads with resp; it allocates
// nothing per request, so a benchmark's allocs/op are the proxy's.
func rawBackend(tb testing.TB, resp string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 4096)
				out := []byte(resp)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) == 2 {
						if _, err := c.Write(out); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkProxyGET measures one keep-alive GET through the proxy per
// op, over real loopback sockets (client → proxy → backend).
//
//	go test -run x -bench ProxyGET -benchmem ./internal/proxy
func BenchmarkProxyGET(b *testing.B) {
	for _, tt := range []struct {
		name  string
		hooks *Hooks
	}{
		{"nohooks", nil},
		{"observe", &Hooks{Observe: func(*Request, *Response) {}}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			body := `{"id":42,"name":"graft","ok":true,"items":[1,2,3]}`
			addr := rawBackend(b, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n"+body)
			p := New(Options{})
			p.SetPrimary(NewBackend(1, addr))
			if tt.hooks != nil {
				p.SetHooks(*tt.hooks)
			}
			base := startProxy(b, p)
			paddr := strings.TrimPrefix(base, "http://")
			req := []byte("GET /items/42 HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")

			// The proxy's answer is the same every time: learn its length,
			// so the client side reads raw bytes and allocates nothing.
			c, err := net.Dial("tcp", paddr)
			if err != nil {
				b.Fatal(err)
			}
			c.Write(req)
			var raw []byte
			buf := make([]byte, 4096)
			for !bytes.HasSuffix(raw, []byte(body)) {
				n, err := c.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				raw = append(raw, buf[:n]...)
			}
			c.Close()
			if !bytes.HasPrefix(raw, []byte("HTTP/1.1 200 OK\r\n")) {
				b.Fatalf("answer %q", raw)
			}
			size := len(raw)

			b.SetParallelism(4)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", paddr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				in := make([]byte, size)
				for pb.Next() {
					if _, err := c.Write(req); err != nil {
						b.Error(err)
						return
					}
					if _, err := io.ReadFull(c, in); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
