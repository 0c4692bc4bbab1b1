package heal

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// benchRules makes n rules like derived ones: spread over routes, or all on
// the same route (the worst case for the trie).
func benchRules(b *testing.B, n int, sameRoute bool) *matcher {
	rs := make([]*rule, 0, n)
	for i := range n {
		path := fmt.Sprintf("/svc%d/items/{}", i)
		if sameRoute {
			path = "/svc/items/{}"
		}
		text := fmt.Sprintf("POST %s header.Content-Type=application/json json.tags=null json.name=attacker%d len(body)=16..63", path, i)
		m, err := ParseMatch(text)
		if err != nil {
			b.Fatal(err)
		}
		rs = append(rs, &rule{match: m})
	}
	return newMatcher(rs)
}

// BenchmarkMatch is the per-request cost of matching against 1,000 rules,
// for a request that matches none of them.
func BenchmarkMatch(b *testing.B) {
	get := &Input{Method: "GET", Path: "/svc500/items/42", RawQuery: "a=1", Header: http.Header{"Accept": {"*/*"}}, BodyLen: 0}
	post := &Input{Method: "POST", Path: "/svc500/items/42", Header: http.Header{"Content-Type": {"application/json"}},
		Body: []byte(`{"name":"alice","tags":{"a":"b"}}`)}
	post.BodyLen = int64(len(post.Body))
	for _, c := range []struct {
		name  string
		rules int
		same  bool
		in    *Input
	}{
		{"rules=0/GET", 0, false, get},
		{"rules=1000/spread/GET", 1000, false, get},
		{"rules=1000/spread/POST-json", 1000, false, post},
		{"rules=1000/same-route/GET", 1000, true, &Input{Method: "GET", Path: "/svc/items/42", Header: http.Header{}}},
		{"rules=1000/same-route/POST-json", 1000, true, &Input{Method: "POST", Path: "/svc/items/42", Header: post.Header, Body: post.Body, BodyLen: post.BodyLen}},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := benchRules(b, c.rules, c.same)
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if m.match(c.in, now) != nil {
					b.Fatal("benign request matched")
				}
			}
		})
	}
}

// BenchmarkCrashAnalysis is the healer's own share of the time to seal: the
// analysis of a second crash with 10 requests in flight at each crash and
// 1,024 benign requests sampled (the proxy and restart add theirs).
func BenchmarkCrashAnalysis(b *testing.B) {
	lookalike := func(i int) *Input {
		return req("POST", fmt.Sprintf("/items/%d", i), map[string]string{"Content-Type": "application/json"}, fmt.Sprintf(`{"name":"n%d","tags":{},"labels":["x"]}`, i))
	}
	crash := func(gen, base int) CrashReport {
		c := CrashReport{Gen: gen, Stderr: []byte(nilMapTrace), InFlight: []*Input{attack(base)}}
		for i := range 9 {
			if i%3 == 0 {
				c.InFlight = append(c.InFlight, lookalike(base+i+1))
			} else {
				c.InFlight = append(c.InFlight, benignReq(base+i+1))
			}
		}
		return c
	}
	for b.Loop() {
		b.StopTimer()
		h, _ := New(Options{})
		for i := range 1024 {
			if i%3 == 0 {
				h.Benign(lookalike(i + 10_000))
			} else {
				h.Benign(benignReq(i + 10_000))
			}
		}
		h.Crash(crash(1, 100))
		b.StartTimer()
		h.Crash(crash(2, 200))
		b.StopTimer()
		if len(h.List()) != 1 {
			b.Fatalf("rules: %+v", h.List())
		}
		b.StartTimer()
	}
}
