package differ

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
)

// fakeService answers like a small JSON service whose answers carry
// nondeterministic fields: a timestamp, a random request id, a random
// boolean, and an object whose keys come out in random order. mutate seeds
// a regression into the candidate.
type fakeService struct {
	rng    *rand.Rand
	mutate func(path string, status *int, h http.Header, fields map[string]string)
}

func (s *fakeService) answer(path string) *Answer {
	id := strings.TrimPrefix(path, "/users/")
	status := 200
	h := http.Header{"Content-Type": {"application/json"}, "X-Version": {"1"}, "Date": {time.Now().Format(time.RFC1123)}}
	fields := map[string]string{
		"id":      id,
		"name":    fmt.Sprintf("%q", "user"+id),
		"email":   fmt.Sprintf("%q", "u"+id+"@example.com"),
		"at":      fmt.Sprintf("%q", time.Now().Add(time.Duration(s.rng.IntN(1e6))).Format(time.RFC3339Nano)),
		"req":     fmt.Sprintf("%q", fmt.Sprintf("%016x", s.rng.Uint64())),
		"lucky":   fmt.Sprint(s.rng.IntN(2) == 0),
		"balance": "12.50",
	}
	if s.mutate != nil {
		s.mutate(path, &status, h, fields)
	}
	// Random key order, as a Go map ranged over would give.
	var parts []string
	for k, v := range fields {
		parts = append(parts, fmt.Sprintf("%q:%s", k, v))
	}
	s.rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return &Answer{Status: status, Header: h, Body: []byte("{" + strings.Join(parts, ",") + "}")}
}

func runDiffer(t *testing.T, n int, mutate func(string, *int, http.Header, map[string]string)) Judgement {
	t.Helper()
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	primary := &fakeService{rng: rand.New(rand.NewPCG(1, 1))}
	secondary := &fakeService{rng: rand.New(rand.NewPCG(2, 2))}
	candidate := &fakeService{rng: rand.New(rand.NewPCG(3, 3)), mutate: mutate}
	for i := range n {
		path := fmt.Sprintf("/users/%d", i%37)
		if i%2 == 1 {
			path = fmt.Sprintf("/users/%d", 1000+i)
		}
		d.Add("GET", path, "", primary.answer(path), secondary.answer(path), candidate.answer(path))
	}
	return d.Judge()
}

func divergentFields(j Judgement) []string {
	var out []string
	for _, r := range j.Routes {
		for _, f := range r.Fields {
			if f.Divergent {
				out = append(out, r.Route+" "+f.Path)
			}
		}
	}
	return out
}

func TestDifferSeededRegressions(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(path string, status *int, h http.Header, f map[string]string)
		want   string // the one divergent field
	}{
		{"changed value", func(_ string, _ *int, _ http.Header, f map[string]string) { f["balance"] = "12.49" }, "body.balance"},
		{"missing field", func(_ string, _ *int, _ http.Header, f map[string]string) { delete(f, "email") }, "body.email"},
		{"type change", func(_ string, _ *int, _ http.Header, f map[string]string) { f["id"] = fmt.Sprintf("%q", f["id"]) }, "body.id"},
		{"status change", func(_ string, s *int, _ http.Header, _ map[string]string) { *s = 201 }, "status"},
		{"header change", func(_ string, _ *int, h http.Header, _ map[string]string) { h.Set("X-Version", "2") }, "header.X-Version"},
		{"header removed", func(_ string, _ *int, h http.Header, _ map[string]string) { h.Del("Content-Type") }, "header.Content-Type"},
		{"one in ten answers", func(p string, _ *int, _ http.Header, f map[string]string) {
			if strings.HasSuffix(p, "0") {
				f["name"] = `"?"`
			}
		}, "body.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := runDiffer(t, 400, tt.mutate)
			if j.Verdict != api.VerdictFail {
				t.Fatalf("verdict %s (%s), want fail", j.Verdict, j.Reason)
			}
			got := divergentFields(j)
			if len(got) != 1 || got[0] != "GET /users/{id} "+tt.want {
				t.Errorf("divergent fields %q, want only %q", got, tt.want)
			}
			if len(j.Routes) != 1 || len(j.Routes[0].Examples) == 0 {
				t.Fatalf("want one route with examples, got %+v", j.Routes)
			}
			ex := j.Routes[0].Examples
			found := false
			for _, e := range ex {
				found = found || e.Field == tt.want
			}
			if !found {
				t.Errorf("no example for %s among %d examples", tt.want, len(ex))
			}
		})
	}
}

func TestDifferOldVsOld(t *testing.T) {
	j := runDiffer(t, 1200, nil)
	if got := divergentFields(j); len(got) != 0 {
		t.Fatalf("old vs old: divergent fields %q", got)
	}
	if j.Verdict != api.VerdictPass {
		t.Fatalf("old vs old over 1200 requests: verdict %s (%s), want pass", j.Verdict, j.Reason)
	}
	r := j.Routes[0]
	if r.Compared != 1200 || r.Noise != 1200 || r.Unexplained != 0 {
		t.Errorf("route %+v: want 1200 compared, all noisy, none unexplained", r)
	}
	noisy := map[string]bool{}
	for _, f := range r.Fields {
		noisy[f.Path] = f.Noise > 0
	}
	for _, p := range []string{"body.at", "body.req", "body.lucky"} {
		if !noisy[p] {
			t.Errorf("field %s not measured as noise: %v", p, noisy)
		}
	}
	if noisy["body.name"] || noisy["header.Date"] {
		t.Errorf("deterministic or ignored field reported: %v", noisy)
	}
}

func TestDifferUndecided(t *testing.T) {
	j := runDiffer(t, 100, nil)
	if j.Verdict != api.VerdictUndecided {
		t.Fatalf("100 requests with a 1%% target: verdict %s, want undecided", j.Verdict)
	}
	if r := j.Routes[0]; r.Needed != 299 || r.Bound < 0.02 {
		t.Errorf("route needed %d bound %g, want 299 and a bound about 3/100", r.Needed, r.Bound)
	}
	// One unexplained difference in a field that is never noisy blocks a
	// pass but is not (yet) evidence of divergence.
	k := 0
	j = runDiffer(t, 600, func(_ string, _ *int, _ http.Header, f map[string]string) {
		if k++; k == 5 {
			f["name"] = `"x"`
		}
	})
	if j.Verdict != api.VerdictUndecided || j.Routes[0].Unexplained != 1 {
		t.Errorf("one unexplained diff: verdict %s unexplained %d, want undecided and 1", j.Verdict, j.Routes[0].Unexplained)
	}
}

func TestDifferMergesCollapsedRoutes(t *testing.T) {
	d, _ := New(Options{Router: RouterOptions{MaxChildren: 3}})
	a := jsonAnswer(200, `{"a":1}`)
	for _, name := range []string{"alpha", "beta", "gamma", "delta", "epsilon"} {
		d.Add("GET", "/docs/"+name, "", a, a, a)
	}
	j := d.Judge()
	if len(j.Routes) != 1 || j.Routes[0].Route != "GET /docs/{param}" || j.Routes[0].Compared != 5 {
		t.Fatalf("routes %+v, want one GET /docs/{param} with 5 compared", j.Routes)
	}
}
