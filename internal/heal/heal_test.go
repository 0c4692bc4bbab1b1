package heal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/heal/rule"
	"github.com/prometheus/client_golang/prometheus"
)

const nilMapTrace = "panic: assignment to entry in nil map\n\ngoroutine 9 [running]:\nmain.tag.func1()\n\t/a/main.go:20 +0x1\n"
const indexTrace = "panic: runtime error: index out of range [5] with length 2\n\ngoroutine 9 [running]:\nmain.pick()\n\t/a/main.go:30 +0x1\n"

// req builds a request the way the proxy hook sees it.
func req(method, target string, hdr map[string]string, body string) *rule.Input {
	path, query, _ := strings.Cut(target, "?")
	h := http.Header{}
	for k, v := range hdr {
		h.Set(k, v)
	}
	return &rule.Input{Method: method, Path: path, RawQuery: query, Header: h, Body: []byte(body), BodyLen: int64(len(body))}
}

func attack(i int) *rule.Input {
	return req("POST", fmt.Sprintf("/items/%d", i), map[string]string{"Content-Type": "application/json"}, `{"name":"n`+fmt.Sprint(i)+`","tags":null}`)
}

func benignReq(i int) *rule.Input {
	if i%2 == 0 {
		return req("GET", fmt.Sprintf("/items/%d", i), nil, "")
	}
	return req("POST", fmt.Sprintf("/items/%d", i), map[string]string{"Content-Type": "application/json"}, `{"name":"n`+fmt.Sprint(i)+`","tags":{"k":"v"}}`)
}

func TestCrashPolicy(t *testing.T) {
	tests := []struct {
		name    string
		crashes []CrashReport
		want    []int       // rules installed after each crash
		probe   *rule.Input // must be sealed at the end
	}{
		{
			name:    "single request in flight seals at once",
			crashes: []CrashReport{{Gen: 1, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{attack(1)}}},
			want:    []int{1},
			probe:   attack(1),
		},
		{
			name: "two single crashes generalize",
			crashes: []CrashReport{
				{Gen: 1, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{attack(1)}},
				{Gen: 2, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{attack(3)}},
			},
			want:  []int{1, 2},
			probe: attack(12345),
		},
		{
			name: "several in flight waits for a second crash",
			crashes: []CrashReport{
				{Gen: 1, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{benignReq(2), attack(1), benignReq(3)}},
				{Gen: 2, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{benignReq(5), benignReq(4), attack(7)}},
			},
			want:  []int{0, 1},
			probe: attack(12345),
		},
		{
			name: "different crash sites do not confirm each other",
			crashes: []CrashReport{
				{Gen: 1, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{benignReq(2), attack(1)}},
				{Gen: 2, Stderr: []byte(indexTrace), InFlight: []*rule.Input{benignReq(4), attack(7)}},
			},
			want: []int{0, 0},
		},
		{
			name:    "no request in flight",
			crashes: []CrashReport{{Gen: 1, Stderr: []byte(nilMapTrace)}},
			want:    []int{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 200 {
				h.Benign(benignReq(i))
			}
			for i, c := range tt.crashes {
				h.Crash(c)
				if got := len(h.List()); got != tt.want[i] {
					t.Fatalf("after crash %d: %d rules, want %d: %v", i+1, got, tt.want[i], h.List())
				}
			}
			rules := h.List()
			if len(rules) == 0 {
				return
			}
			for i := range 1000 {
				b := benignReq(i + 1000)
				if _, _, _, sealed := h.Check(b); sealed {
					t.Fatalf("rule %q seals benign %s %s %s", rules[0].Match, b.Method, b.Path, b.Body)
				}
			}
			status, hdr, body, sealed := h.Check(tt.probe)
			if !sealed || status != 503 || hdr.Get("X-Graft-Rule") != rules[len(rules)-1].ID {
				t.Fatalf("rule %q misses a fresh attack: %d %v", rules[0].Match, status, sealed)
			}
			var ans api.SealAnswer
			last := rules[len(rules)-1]
			if err := json.Unmarshal(body, &ans); err != nil || ans.Rule != last.ID || !strings.Contains(ans.Error, last.ID) {
				t.Fatalf("answer %s: %v", body, err)
			}
			var hits uint64
			for _, r := range h.List() {
				hits += r.Hits
			}
			if hits != 1 {
				t.Fatalf("hits = %d, want 1", hits)
			}
		})
	}
}

// A benign request identical to the attack's route features must block
// derivation rather than be sealed.
func TestCrashPolicyRefusesRuleMatchingBenign(t *testing.T) {
	h, _ := New(Options{})
	h.Benign(attack(1))
	h.Crash(CrashReport{Gen: 1, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{attack(1)}})
	if n := len(h.List()); n != 0 {
		t.Fatalf("installed %d rules matching a benign request", n)
	}
}

func TestStorePersistsAndExpires(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.json")
	reg := prometheus.NewRegistry()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	h, err := New(Options{StorePath: path, TTL: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	h.now = func() time.Time { return now }
	r1, existed, err := h.Add(api.SealAddRequest{Match: "POST /items/{} json.tags=null", Reason: "test"})
	if err != nil || existed {
		t.Fatal(err, existed)
	}
	if _, existed, _ := h.Add(api.SealAddRequest{Match: "POST  /items/{}   json.tags=null"}); !existed {
		t.Fatal("same rule added twice")
	}
	r2, _, err := h.Add(api.SealAddRequest{Match: "GET /x", TTL: "0", Status: 429})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Add(api.SealAddRequest{Match: "GET /x", Status: 200}); err == nil {
		t.Fatal("status 200 accepted")
	}
	if _, _, err := h.Add(api.SealAddRequest{Match: "GET"}); err == nil {
		t.Fatal("bad rule accepted")
	}
	h.Check(req("POST", "/items/1", nil, `{"tags":null}`))
	if err := h.store.flush(); err != nil { // what Run does on shutdown
		t.Fatal(err)
	}

	// A new healer on the same file (a supervisor restart) has the rules.
	h2, err := New(Options{StorePath: path})
	if err != nil {
		t.Fatal(err)
	}
	h2.now = func() time.Time { return now }
	byID := map[string]api.SealRule{}
	for _, r := range h2.List() {
		byID[r.ID] = r
	}
	if len(byID) != 2 || byID[r1.ID].Match != "POST /items/{} json.tags=null" || byID[r1.ID].Hits != 1 ||
		!byID[r2.ID].Expires.IsZero() || byID[r2.ID].Status != 429 {
		t.Fatalf("after restart: %+v", byID)
	}
	if _, _, _, ok := h2.Check(req("POST", "/items/1", nil, `{"tags":null}`)); !ok {
		t.Fatal("reloaded rule does not seal")
	}

	now = now.Add(time.Hour)
	h.expire()
	if got := h.List(); len(got) != 1 || got[0].ID != r2.ID {
		t.Fatalf("after expiry: %+v", got)
	}
	if v := metricValue(t, reg, "graft_seal_expired_total"); v != 1 {
		t.Fatalf("expired counter = %v", v)
	}
	if ok, err := h.Remove(r2.ID); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, _ := h.Remove(r2.ID); ok {
		t.Fatal("removed twice")
	}
	data, _ := os.ReadFile(path)
	var doc api.SealList
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != 1 || len(doc.Rules) != 0 {
		t.Fatalf("file after removal: %s", data)
	}
	if v := metricValue(t, reg, "graft_seal_installs_total"); v != 2 {
		t.Fatalf("installs = %v, want 2", v)
	}
	if v := metricValue(t, reg, "graft_seal_hits_total"); v != 1 {
		t.Fatalf("hits = %v, want 1", v)
	}
}

// metricValue sums a metric family's counter and gauge values.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// With no benign evidence, a benign request in flight at both crashes next
// to the attack makes two unrelated candidate rules: the healer waits for a
// third crash instead of guessing, then seals the attack only. A crash
// caused by a request admitted before its rule existed derives nothing.
func TestCrashPolicyAmbiguous(t *testing.T) {
	lookalike := func(i int) *rule.Input {
		return req("POST", fmt.Sprintf("/items/%d", i), map[string]string{"Content-Type": "application/json"}, `{"name":"n`+fmt.Sprint(i)+`","tags":{},"labels":["x"]}`)
	}
	h, _ := New(Options{})
	h.Crash(CrashReport{Gen: 1, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{lookalike(2), attack(1)}})
	h.Crash(CrashReport{Gen: 2, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{lookalike(4), attack(3)}})
	if n := len(h.List()); n != 0 {
		t.Fatalf("guessed %d rules from ambiguous crashes: %+v", n, h.List())
	}
	h.Crash(CrashReport{Gen: 3, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{benignReq(6), attack(5)}})
	rules := h.List()
	if len(rules) != 1 || !strings.Contains(rules[0].Match, "json.tags=null") {
		t.Fatalf("after a third crash: %+v", rules)
	}
	if _, _, _, sealed := h.Check(lookalike(8)); sealed {
		t.Fatal("benign lookalike sealed")
	}
	// Admitted before the rule: explained, no new rule.
	h.Crash(CrashReport{Gen: 4, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{lookalike(10), attack(9)}})
	if n := len(h.List()); n != 1 {
		t.Fatalf("explained crash added rules: %+v", h.List())
	}
}

// A bystander sharing incidental features with the crasher (both names
// short) must not win over the crasher's true partner from the other crash
// (a long name): the pair that disagrees on a JSON type is a mixed group.
func TestCrashPolicyPrefersSameShape(t *testing.T) {
	lookalike := func(i int) *rule.Input {
		return req("POST", fmt.Sprintf("/items/%d", i), map[string]string{"Content-Type": "application/json"}, `{"name":"n`+fmt.Sprint(i)+`","tags":{},"labels":["x"]}`)
	}
	attack := func(i int) *rule.Input {
		return req("POST", fmt.Sprintf("/items/%d", i), map[string]string{"Content-Type": "application/json"}, `{"name":"n`+fmt.Sprint(i)+`","tags":null,"labels":["x"]}`)
	}
	h, _ := New(Options{})
	for i := range 300 {
		h.Benign(lookalike(10_000_000 + i)) // only long names seen
		h.Benign(benignReq(i))
	}
	h.Crash(CrashReport{Gen: 1, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{attack(1), benignReq(2)}})
	h.Crash(CrashReport{Gen: 2, Stderr: []byte(nilMapTrace), InFlight: []*rule.Input{lookalike(3), attack(1234567)}})
	rules := h.List()
	if len(rules) != 1 || !strings.Contains(rules[0].Match, "json.tags=null") {
		t.Fatalf("rules: %+v", rules)
	}
	for _, in := range []*rule.Input{lookalike(4), lookalike(12345678)} {
		if _, _, _, sealed := h.Check(in); sealed {
			t.Fatalf("bystander %s sealed by %q", in.Body, rules[0].Match)
		}
	}
	if _, _, _, sealed := h.Check(attack(77)); !sealed {
		t.Fatalf("attack variant not sealed by %q", rules[0].Match)
	}
}

// The proxy (or the client) re-sends a request in flight at a crash to the
// next generation, so the crasher and a bystander can each be in flight at
// both crashes. The bystander is an ordinary request of a busy route (only
// its id is new), so the crasher is sealed at the second crash, not later.
func TestCrashPolicyRetriedBystander(t *testing.T) {
	get := func(id uint64, path string) *rule.Input {
		in := req("GET", path, nil, "")
		in.ID = id
		return in
	}
	h, _ := New(Options{})
	for i := range 300 {
		h.Benign(req("GET", fmt.Sprintf("/items/%d?page=%d", i, i%3), nil, ""))
	}
	h.Crash(CrashReport{Gen: 1, Stderr: []byte(indexTrace), InFlight: []*rule.Input{get(1, "/items/0?page=7"), get(2, "/items/5?page=1")}})
	h.Crash(CrashReport{Gen: 2, Stderr: []byte(indexTrace), InFlight: []*rule.Input{get(3, "/items/5?page=1"), get(4, "/items/0?page=7")}})
	rules := h.List()
	if len(rules) != 1 || !strings.Contains(rules[0].Match, "query.page=7") {
		t.Fatalf("rules: %+v", rules)
	}
	if _, _, _, sealed := h.Check(req("GET", "/items/5?page=1", nil, "")); sealed {
		t.Fatal("bystander sealed")
	}
}
