package shadow

import (
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/graftdev/graft/internal/proxy"
	"github.com/graftdev/graft/internal/shadow/differ"
)

// BenchmarkObserve is the shadow's share of the primary path: what the
// proxy's Observe hook costs per exchange.
func BenchmarkObserve(b *testing.B) {
	req := &proxy.Request{Gen: 1, Method: "GET", Path: "/users/42", Header: http.Header{"Accept": {"*/*"}}, BodyLen: 0}
	resp := &proxy.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":42}`), BodyLen: 9}
	b.Run("idle", func(b *testing.B) {
		s := NewService(Host{}, ServiceOptions{})
		for b.Loop() {
			s.Observe(req, resp)
		}
	})
	b.Run("queue-full", func(b *testing.B) {
		s := NewService(Host{}, ServiceOptions{})
		c, _ := NewController(Options{Queue: 1}, "127.0.0.1:1", "127.0.0.1:1")
		s.active.Store(c)
		s.Observe(req, resp)
		for b.Loop() {
			s.Observe(req, resp)
		}
	})
	b.Run("enqueue", func(b *testing.B) {
		s := NewService(Host{}, ServiceOptions{})
		c, _ := NewController(Options{Queue: 4096}, "127.0.0.1:1", "127.0.0.1:1")
		s.active.Store(c)
		for b.Loop() {
			s.Observe(req, resp)
			if len(c.free) == 0 {
				b.StopTimer()
				for len(c.sendq) > 0 {
					i := <-c.sendq
					c.slots[i] = slot{}
					c.free <- i
				}
				b.StartTimer()
			}
		}
	})
}

// BenchmarkMirror is the worker's work per mirrored exchange: both lane
// requests and the comparison of the three answers. The lanes here are
// in-process servers, so ns/op includes their side too; a CPU profile
// separates them (the client side is this package's lane client, the
// lanes' side net/http's server).
func BenchmarkMirror(b *testing.B) {
	body := []byte(`{"id":42,"name":"user42","email":"user42@example.com","plan":"free","tags":["beta","eu"],"cart":[{"sku":"sku-42-0","qty":3,"price":3.94},{"sku":"sku-42-1","qty":4,"price":4.07},{"sku":"sku-42-2","qty":1,"price":4.2},{"sku":"sku-42-3","qty":2,"price":4.33},{"sku":"sku-42-4","qty":3,"price":4.46}],"total":40.28,"served_at":"2026-11-29T22:10:00.123456Z","request_id":"9f1c2e"}` + "\n")
	lane := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer lane.Close()
	w := newWorker(workerConfig{Candidate: addr(lane), Secondary: addr(lane), Timeout: 10 * time.Second, BodyCap: 64 << 10, Workers: 1, ExampleBody: 2 << 10})
	defer w.close()
	j := workJob{
		req:     &Request{Gen: 1, Method: "GET", Path: "/users/42", Header: http.Header{"Accept": {"*/*"}, "User-Agent": {"wrk"}}},
		primary: &differ.Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body},
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		w.compare(b.Context(), j)
	}
	// Wall time is mostly waiting on the loopback; CPU time is the cost.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGraftSide is graft's own work per compared exchange when a
// worker process compares: take a slot, encode the exchange for the
// worker, decode the outcome and record it. The socket's reads and writes
// are not in it: they are batched, one per many exchanges at saturation.
func BenchmarkGraftSide(b *testing.B) {
	c, err := NewController(Options{}, "127.0.0.1:1", "127.0.0.1:1")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"id":42,"name":"user42","plan":"free","served_at":"2026-11-29T22:10:00.123456Z","request_id":"9f1c2e"}`)
	req := &Request{Gen: 1, Method: "GET", Path: "/users/42", Header: http.Header{"Accept": {"*/*"}, "User-Agent": {"wrk"}}}
	primary := &differ.Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
	frame := appendOutcome(nil, &outcome{Outcome: differ.Outcome{Noise: []string{"body.request_id", "body.served_at"}, Diffs: []string{"body.request_id", "body.served_at"}}})
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		c.enqueue(req, primary)
		i := <-c.sendq
		buf = c.appendSlot(buf[:0], i)
		o, err := decodeOutcome(frame[5:])
		if err != nil {
			b.Fatal(err)
		}
		o.slot = i
		c.record(o)
	}
}
