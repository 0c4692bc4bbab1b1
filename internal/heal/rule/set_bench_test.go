package rule

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// benchRules makes n rules like derived ones: spread over routes, or all on
// the same route (the worst case for the trie).
func benchRules(b *testing.B, n int, sameRoute bool) *Set[int] {
	rs := make([]*Entry[int], 0, n)
	for i := range n {
		path := fmt.Sprintf("/svc%d/items/{}", i)
		if sameRoute {
			path = "/svc/items/{}"
		}
		text := fmt.Sprintf("POST %s header.Content-Type=application/json json.tags=null json.name=attacker%d len(body)=16..63", path, i)
		m, err := Parse(text)
		if err != nil {
			b.Fatal(err)
		}
		rs = append(rs, &Entry[int]{Match: m, Value: i})
	}
	return NewSet(rs)
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
				if _, ok := m.Match(c.in, now); ok {
					b.Fatal("benign request matched")
				}
			}
		})
	}
}
