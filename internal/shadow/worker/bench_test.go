package worker

import (
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/graftdev/graft/internal/shadow/differ"
)

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
	m := newMirror(Config{Candidate: addr(lane), Secondary: addr(lane), Timeout: 10 * time.Second, BodyCap: 64 << 10, Workers: 1, ExampleBody: 2 << 10})
	defer m.close()
	j := job{
		req:     &Request{Method: "GET", Path: "/users/42", Header: http.Header{"Accept": {"*/*"}, "User-Agent": {"wrk"}}},
		primary: &differ.Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body},
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		m.compare(b.Context(), j)
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
