package heal

import (
	"bytes"
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/guard"
	"github.com/graftdev/graft/internal/proxy"
)

// BenchmarkProxyWithHealHooks measures one keep-alive request through a
// real proxy in front of an httptest backend on loopback, per op, with no
// hooks, with self-healing's hooks (no rule, no guard on: the proxy copies
// a request only when the benign sample takes it), with a seal rule
// installed that no request matches (every request is copied and matched),
// and with them
// composed with a no-op Observe like shadowing's (an atomic load while no
// shadow run is active), as graft run installs them. The difference
// between the variants is what self-healing costs every request.
//
// cpu-ns/op is the process's CPU time per request (client, proxy and
// backend together).
//
//	go test -run x -bench ProxyWithHealHooks -benchmem ./internal/heal
func BenchmarkProxyWithHealHooks(b *testing.B) {
	const body = `{"id":42,"name":"graft","ok":true,"items":[1,2,3]}`
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	b.Cleanup(backend.Close)
	addr := backend.Listener.Addr().String()

	var shadowActive atomic.Pointer[int]
	shadowObserve := func(*proxy.Request, *proxy.Response) {
		if shadowActive.Load() != nil {
			b.Fatal("no shadow run is active")
		}
	}
	newAttached := func(b *testing.B) *Attached {
		h, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		return &Attached{Healer: h, Guards: guard.New(guard.Options{})}
	}
	withRule := func(b *testing.B) *proxy.Hooks {
		a := newAttached(b)
		if _, _, err := a.Healer.Add(api.SealAddRequest{Match: "POST /orders/{} header.Content-Type=application/json json.tags=null"}); err != nil {
			b.Fatal(err)
		}
		h := a.Hooks()
		return &h
	}
	for _, tt := range []struct {
		name  string
		hooks func(b *testing.B) *proxy.Hooks
	}{
		{"nohooks", func(*testing.B) *proxy.Hooks { return nil }},
		{"heal", func(b *testing.B) *proxy.Hooks { h := newAttached(b).Hooks(); return &h }},
		{"heal+rule", withRule},
		// Every request sampled, as at rates below one per sampleGap (and
		// under callgrind, which runs the program some 50 times slower),
		// and none: the range the benign sample's cost moves in.
		{"heal-sampleall", func(b *testing.B) *proxy.Hooks {
			a := newAttached(b)
			a.Healer.benign.gap = 0
			h := a.Hooks()
			return &h
		}},
		{"heal-samplenone", func(b *testing.B) *proxy.Hooks {
			a := newAttached(b)
			a.Healer.benign.gap = math.MaxInt64
			h := a.Hooks()
			return &h
		}},
		{"heal+shadow", func(b *testing.B) *proxy.Hooks {
			h := proxy.Compose(newAttached(b).Hooks(), proxy.Hooks{Observe: shadowObserve, ObserveResponse: true})
			return &h
		}},
	} {
		for _, rq := range []struct{ name, req string }{
			{"GET", "GET /items/42?page=2 HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"},
			{"POST", "POST /items/42 HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"tags\":[\"a\",\"b\"],\"n\":12}\r\n"},
		} {
			b.Run(tt.name+"/"+rq.name, func(b *testing.B) {
				p := proxy.New(proxy.Options{})
				p.SetPrimary(proxy.NewBackend(1, addr))
				if h := tt.hooks(b); h != nil {
					p.SetHooks(*h)
				}
				paddr := serveProxy(b, p)
				req := []byte(rq.req)
				size := answerSize(b, paddr, req, body)

				b.SetParallelism(4)
				b.ReportAllocs()
				cpu0 := cpuTime(b)
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
				b.StopTimer()
				// CPU time of the whole process (client, proxy and backend)
				// per request: on a shared machine it varies less than the
				// wall time, and the difference between variants is the
				// hooks' cost.
				b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func serveProxy(b *testing.B, p *proxy.Proxy) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			b.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// answerSize learns the length of the proxy's (constant) answer to req, so
// the benchmark's client reads raw bytes and allocates nothing.
func answerSize(b *testing.B, addr string, req []byte, body string) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
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
	if !bytes.HasPrefix(raw, []byte("HTTP/1.1 200 OK\r\n")) {
		b.Fatalf("answer %q", raw)
	}
	return len(raw)
}
