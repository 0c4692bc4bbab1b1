package differ

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// partialNoise answers like a service with fields that differ between two
// instances only in part of the requests: each answer draws them anew, so
// the primary, the secondary and the candidate (the same version) are
// independent draws for every request.
type partialNoise struct {
	rng *rand.Rand
}

func (s partialNoise) answer(id int) *Answer {
	r := s.rng
	pick := func(p float64, a, b string) string { // b with probability p
		if r.Float64() < p {
			return b
		}
		return a
	}
	// cache: differs between two answers in 2·0.18·0.82 ≈ 30% of requests;
	// shard: 0, 1 or 2 with probabilities 2/3, 1/6, 1/6: differs in half;
	// flag: differs in about 5%; retry: present in 10% of answers, so
	// present in one of two in 18%.
	body := fmt.Sprintf(`{"id":%d,"name":"u%d","cache":%q,"shard":%d,"flag":%s%s}`,
		id, id, pick(0.18, "miss", "hit"), r.IntN(3)*r.IntN(2), pick(0.025, "false", "true"),
		pick(0.1, "", `,"retry":1`))
	return &Answer{Status: 200, Body: []byte(body)}
}

// binomialQuantile is the smallest q with P(Binomial(n, p) > q) ≤ tail.
func binomialQuantile(n int, p, tail float64) int {
	cdf := 0.0
	for q := 0; q <= n; q++ {
		lp := lgamma(n+1) - lgamma(q+1) - lgamma(n-q+1) + float64(q)*math.Log(p) + float64(n-q)*math.Log1p(-p)
		cdf += math.Exp(lp)
		if 1-cdf <= tail {
			return q
		}
	}
	return n
}

// Many seeded old-vs-old replays through the whole differ (comparison,
// Bonferroni over fields, latched divergence, a look every 10 requests as
// the controller does): the runs in which any field is reported divergent
// must be within what the family-wise α allows. Fields noisy only in part
// of the requests give discordant pairs both ways; the test must not turn
// them into false alarms more often than α.
func TestDifferPartialNoiseFalseAlarms(t *testing.T) {
	runs, requests := 200, 500
	if testing.Short() {
		runs = 100
	}
	const alpha = 0.01
	alarms := 0
	fields := map[string]int{}
	for run := range runs {
		d, err := New(Options{Alpha: alpha})
		if err != nil {
			t.Fatal(err)
		}
		svc := partialNoise{rng: rand.New(rand.NewPCG(uint64(run), 7))}
		alarmed := false
		for i := 1; i <= requests && !alarmed; i++ {
			id := svc.rng.IntN(50)
			p, s, c := svc.answer(id), svc.answer(id), svc.answer(id)
			d.Add("GET", fmt.Sprintf("/users/%d", id), "", p, s, c)
			if i%10 != 0 {
				continue
			}
			for _, f := range divergentFields(d.Judge()) {
				fields[f]++
				alarmed = true
			}
		}
		if alarmed {
			alarms++
		}
	}
	// TestPartialNoiseServiceIsNoisy shows the fields are noisy both ways,
	// so this is not vacuous.
	limit := binomialQuantile(runs, alpha, 1e-3)
	t.Logf("%d of %d old-vs-old runs had a divergent field (α = %g allows ≤ %d at the 0.1%% level); fields: %v", alarms, runs, alpha, limit, fields)
	if alarms > limit {
		t.Errorf("%d of %d old-vs-old runs reported a divergent field, more than α = %g allows (%d)", alarms, runs, alpha, limit)
	}
}

// The replay above must really exercise partial noise: in one long run,
// the noisy fields have discordant pairs in both directions and in about
// the shares the service draws.
func TestPartialNoiseServiceIsNoisy(t *testing.T) {
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := partialNoise{rng: rand.New(rand.NewPCG(1, 7))}
	const n = 2000
	for range n {
		p, s, c := svc.answer(1), svc.answer(1), svc.answer(1)
		d.Add("GET", "/users/1", "", p, s, c)
	}
	j := d.Judge()
	want := map[string][2]float64{"body.cache": {0.2, 0.4}, "body.flag": {0.02, 0.08}, "body.retry": {0.1, 0.25}, "body.shard": {0.4, 0.8}}
	for _, f := range j.Routes[0].Fields {
		lim, ok := want[f.Path]
		if !ok {
			t.Errorf("unexpected field %s", f.Path)
			continue
		}
		delete(want, f.Path)
		if share := float64(f.Noise) / n; share < lim[0] || share > lim[1] {
			t.Errorf("%s: noise in %.2f of requests, want %v", f.Path, share, lim)
		}
		if f.CandidateOnly == 0 || f.SecondaryOnly == 0 {
			t.Errorf("%s: discordant pairs %d/%d, want both ways", f.Path, f.CandidateOnly, f.SecondaryOnly)
		}
	}
	if len(want) > 0 {
		t.Errorf("fields never noisy: %v", want)
	}
}
