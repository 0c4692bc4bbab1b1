package heal

import (
	"fmt"
	"testing"

	"github.com/graftdev/graft/internal/heal/rule"
)

// BenchmarkCrashAnalysis is the healer's own share of the time to seal: the
// analysis of a second crash with 10 requests in flight at each crash and
// 1,024 benign requests sampled (the proxy and restart add theirs).
func BenchmarkCrashAnalysis(b *testing.B) {
	lookalike := func(i int) *rule.Input {
		return req("POST", fmt.Sprintf("/items/%d", i), map[string]string{"Content-Type": "application/json"}, fmt.Sprintf(`{"name":"n%d","tags":{},"labels":["x"]}`, i))
	}
	crash := func(gen, base int) CrashReport {
		c := CrashReport{Gen: gen, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{attack(base)}}
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
