package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestRunCountsFailures(t *testing.T) {
	tests := []struct {
		name     string
		status   func(n uint64) int
		wantFail bool
	}{
		{name: "all succeed", status: func(uint64) int { return 200 }},
		{name: "every tenth fails", status: func(n uint64) int {
			if n%10 == 0 {
				return 500
			}
			return 200
		}, wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var served, posts atomic.Uint64
			reached := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					posts.Add(1)
				}
				n := served.Add(1)
				if n == 200 {
					close(reached)
				}
				w.WriteHeader(tt.status(n))
			}))
			defer srv.Close()
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan Result)
			go func() { done <- Run(ctx, Options{URL: srv.URL, KeepAlive: 4}) }()
			<-reached
			cancel()
			res := <-done
			if res.Requests == 0 || res.Posts == 0 {
				t.Fatalf("requests=%d posts=%d, want both > 0", res.Requests, res.Posts)
			}
			if got := res.Failures > 0; got != tt.wantFail {
				t.Fatalf("failures=%d (%v), want failures: %v", res.Failures, res.Errors, tt.wantFail)
			}
			if res.Failures != res.KeepAliveFailures+res.FreshFailures {
				t.Fatalf("failures %d != keep-alive %d + fresh %d", res.Failures, res.KeepAliveFailures, res.FreshFailures)
			}
		})
	}
}
