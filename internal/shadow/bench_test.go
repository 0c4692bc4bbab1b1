package shadow

import (
	"net/http"
	"testing"

	"github.com/graftdev/graft/internal/proxy"
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
			if len(c.queue) == cap(c.queue) {
				b.StopTimer()
				for len(c.queue) > 0 {
					<-c.queue
				}
				b.StartTimer()
			}
		}
	})
}
