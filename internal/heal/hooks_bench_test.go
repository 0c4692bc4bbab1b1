package heal

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/guard"
	"github.com/graftdev/graft/internal/proxy"
)

// BenchmarkHealHooks is self-healing's own share of a proxied request that
// the proxy has copied: Inspect and Observe called in-process, with
// requests shaped like the proxy's snapshots (no sockets, no proxy data
// path, so allocations and instruction counts are the hooks' alone). This
// is the path of every request while a rule or guard is on (Admit copies
// the request then), and it samples every benign request; with neither,
// the hooks see only the proxy's View and copy a request only when the
// sample takes it: BenchmarkProxyWithHealHooks measures that through a
// real proxy. The proxy hands Observe a copy of the request Inspect saw,
// with its generation set; the benchmark prepares those copies without
// allocating.
//
//	go test -run x -bench HealHooks -benchmem ./internal/heal
//	bash bench/heal/hooks.sh   (instructions per request, callgrind)
func BenchmarkHealHooks(b *testing.B) {
	get := proxy.Request{Method: "GET", Path: "/items/42", RawQuery: "page=2",
		Header: http.Header{"Host": {"bench"}, "User-Agent": {"bench"}, "Accept": {"*/*"}, "X-Forwarded-For": {"127.0.0.1"}}}
	body := []byte(`{"tags":["a","b"],"n":12}` + "\r\n")
	post := proxy.Request{Method: "POST", Path: "/items/42",
		Header: http.Header{"Host": {"bench"}, "User-Agent": {"bench"}, "Content-Type": {"application/json"}, "X-Forwarded-For": {"127.0.0.1"}},
		Body:   body, BodyLen: int64(len(body))}
	// otherRoute is a derived-looking rule that no benchmark request
	// matches: the cost of having rules installed.
	const otherRoute = "POST /orders/{} header.Content-Type=application/json json.tags=null"
	for _, tt := range []struct {
		name     string
		req      proxy.Request
		rule     string
		parallel bool
	}{
		{"rules=0/GET", get, "", false},
		{"rules=0/POST", post, "", false},
		{"rules=1/GET", get, otherRoute, false},
		{"rules=1/POST", post, otherRoute, false},
		{"parallel/rules=0/GET", get, "", true},
	} {
		b.Run(tt.name, func(b *testing.B) {
			h, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			if tt.rule != "" {
				if _, _, err := h.Add(api.SealAddRequest{Match: tt.rule}); err != nil {
					b.Fatal(err)
				}
			}
			a := &Attached{Healer: h, Guards: guard.New(guard.Options{})}
			resp := &proxy.Response{Status: http.StatusOK, Latency: time.Millisecond}
			var ids atomic.Uint64
			// Each worker cycles through its own requests; the benign
			// sample keeps at most 1,152 of them, so 4,096 never alias a
			// request still held as in flight.
			const pool = 4096
			work := func(next func() bool) {
				ins := make([]proxy.Request, pool)
				outs := make([]proxy.Request, pool)
				for i := 0; next(); i = (i + 1) % pool {
					in := &ins[i]
					*in = tt.req
					in.ID = ids.Add(1)
					if ans := a.Inspect(in); ans != nil {
						panic(fmt.Sprintf("benign request answered %d", ans.Status))
					}
					out := &outs[i]
					*out = *in
					out.Gen = 1
					a.Observe(out, resp)
				}
			}
			b.ReportAllocs()
			if tt.parallel {
				b.SetParallelism(2)
				b.RunParallel(func(pb *testing.PB) { work(pb.Next) })
				return
			}
			work(b.Loop)
		})
	}
}
