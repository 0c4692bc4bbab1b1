package shadow

import (
	"net/http"
	"testing"

	"github.com/graftdev/graft/internal/proxy"
	"github.com/graftdev/graft/internal/shadow/differ"
	"github.com/graftdev/graft/internal/shadow/worker"
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

// BenchmarkGraftSide is graft's own work per compared exchange when a
// worker process compares: take a slot, encode the exchange for the
// worker, read and decode the outcome (from memory) and record it. The
// socket's reads and writes are not in it: they are batched, one per many
// exchanges at saturation.
func BenchmarkGraftSide(b *testing.B) {
	c, err := NewController(Options{}, "127.0.0.1:1", "127.0.0.1:1")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"id":42,"name":"user42","plan":"free","served_at":"2026-11-29T22:10:00.123456Z","request_id":"9f1c2e"}`)
	req := &Request{Gen: 1, Method: "GET", Path: "/users/42", Header: http.Header{"Accept": {"*/*"}, "User-Agent": {"wrk"}}}
	primary := &differ.Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
	frame := worker.AppendOutcome(nil, &worker.Outcome{Outcome: differ.Outcome{Noise: []string{"body.request_id", "body.served_at"}, Diffs: []string{"body.request_id", "body.served_at"}}})
	outcomes := worker.NewOutcomeReader(&endless{frame: frame})
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		c.enqueue(req, primary)
		i := <-c.sendq
		buf = c.appendSlot(buf[:0], i)
		o, err := outcomes.Next()
		if err != nil {
			b.Fatal(err)
		}
		o.Slot = i
		c.record(o)
	}
}

// endless reads frame over and over, as a socket would carry outcomes.
type endless struct {
	frame []byte
	off   int
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m := copy(p[n:], e.frame[e.off:])
		n += m
		e.off = (e.off + m) % len(e.frame)
	}
	return n, nil
}
