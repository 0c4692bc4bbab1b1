package guard

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/checks"
)

func request(path, query, body string, hdr http.Header) *Request {
	if hdr == nil {
		hdr = http.Header{}
	}
	return &Request{Method: "POST", Path: path, RawQuery: query, Header: hdr, Body: []byte(body), BodyLen: int64(len(body))}
}

func TestGuards(t *testing.T) {
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	tests := []struct {
		id      string
		params  map[string]string
		refused *Request
		allowed *Request
		status  int
	}{
		{"guard.body_size", map[string]string{"max": "10"}, request("/", "", "01234567890", nil), request("/", "", "0123456789", nil), 413},
		{"guard.json_depth", nil, request("/", "", deep, nil), request("/", "", `{"a":[[{"b":"[[[[["}]]]}`, nil), 400},
		{"guard.header_size", map[string]string{"max": "100"}, request("/", "", "", http.Header{"X-Big": {strings.Repeat("a", 100)}}), request("/", "", "", http.Header{"X-Small": {"a"}}), 431},
		{"guard.path_pattern", map[string]string{"deny": `\.\./`}, request("/files/../etc/passwd", "", "", nil), request("/files/a", "", "", nil), 400},
		{"guard.query_pattern", map[string]string{"deny": `^-`, "name": "n"}, request("/", "n=-1", "", nil), request("/", "m=-1&n=1", "", nil), 400},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			s := New(Options{})
			if _, _, _, ok := s.Check(tt.refused); !ok {
				t.Fatal("guard refuses while off")
			}
			if err := s.Set(tt.id, true, tt.params); err != nil {
				t.Fatal(err)
			}
			status, hdr, body, ok := s.Check(tt.refused)
			if ok || status != tt.status || hdr.Get("X-Graft-Rule") != tt.id {
				t.Fatalf("Check = %d %v, want refused with %d", status, ok, tt.status)
			}
			var ans api.SealAnswer
			if err := json.Unmarshal(body, &ans); err != nil || ans.Rule != tt.id {
				t.Fatalf("answer %s", body)
			}
			if _, _, _, ok := s.Check(tt.allowed); !ok {
				t.Fatal("guard refuses an allowed request")
			}
			for _, g := range s.List() {
				if g.ID == tt.id && (!g.On || g.Blocked != 1) {
					t.Fatalf("List: %+v", g)
				}
			}
			if err := s.Set(tt.id, false, nil); err != nil {
				t.Fatal(err)
			}
			if _, _, _, ok := s.Check(tt.refused); !ok {
				t.Fatal("guard refuses after off")
			}
		})
	}
}

func TestSetValidates(t *testing.T) {
	s := New(Options{})
	for _, c := range []struct {
		id     string
		params map[string]string
	}{
		{"guard.nope", nil},
		{"guard.body_size", map[string]string{"max": "-1"}},
		{"guard.path_pattern", nil},
		{"guard.path_pattern", map[string]string{"deny": "("}},
	} {
		if err := s.Set(c.id, true, c.params); err == nil {
			t.Errorf("Set(%s, %v) accepted", c.id, c.params)
		}
	}
	for _, g := range s.List() {
		if g.On {
			t.Fatalf("%s on after failed Set", g.ID)
		}
	}
}

func key(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

// The alert cases: unsigned, tampered, wrong key and expired alerts are
// refused with the reason and switch nothing on; a good one switches on
// exactly its guards and hands the other ids back.
func TestApplyAlert(t *testing.T) {
	priv := key(1)
	pub := priv.Public().(ed25519.PublicKey)
	now := time.Now()
	body := api.AlertBody{
		ID: "GRAFT-T-1", Expires: now.Add(time.Hour),
		Checks: []api.AlertCheck{{ID: "guard.body_size", Params: map[string]string{"max": "5"}}, {ID: "example.com/m.F#abc"}},
	}
	good, _ := body.Sign(priv)
	wrong, _ := body.Sign(key(2))
	exp := body
	exp.Issued, exp.Expires = now.Add(-2*time.Hour), now.Add(-time.Hour)
	expired, _ := exp.Sign(priv)
	unsigned := *good
	unsigned.Signature = ""
	tampered := *good
	raw, _ := json.Marshal(api.AlertBody{Version: 1, ID: "GRAFT-T-1", KeyID: api.KeyID(pub), Issued: now, Expires: now.Add(time.Hour),
		Checks: []api.AlertCheck{{ID: "guard.body_size", Params: map[string]string{"max": "0"}}}})
	tampered.Body = encodeStd(raw)
	badParam, _ := api.AlertBody{ID: "B", Expires: now.Add(time.Hour), Checks: []api.AlertCheck{
		{ID: "guard.header_size"}, {ID: "guard.path_pattern"}}}.Sign(priv)

	tests := []struct {
		name  string
		key   ed25519.PublicKey
		alert *api.SignedAlert
		want  error
		why   string
	}{
		{"unsigned", pub, &unsigned, api.ErrAlertUnsigned, "unsigned"},
		{"tampered", pub, &tampered, api.ErrAlertTampered, "does not match"},
		{"wrong key", pub, wrong, api.ErrAlertWrongKey, "another key"},
		{"expired", pub, expired, api.ErrAlertExpired, "expired"},
		{"no key pinned", nil, good, ErrNoKey, "--alert-key"},
		{"bad params switch nothing", pub, badParam, nil, "deny"},
		{"good", pub, good, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{Key: tt.key})
			b, others, err := s.Apply(tt.alert)
			if tt.why != "" {
				if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.why) {
					t.Fatalf("Apply = %v, want %v (%q)", err, tt.want, tt.why)
				}
				for _, g := range s.List() {
					if g.On {
						t.Fatalf("%s switched on by a refused alert", g.ID)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.ID != "GRAFT-T-1" || len(others) != 1 || others[0] != "example.com/m.F#abc" {
				t.Fatalf("Apply = %+v, %v", b, others)
			}
			if _, _, _, ok := s.Check(request("/", "", "123456", nil)); ok {
				t.Fatal("alert's guard not on")
			}
			for _, g := range s.List() {
				if g.ID == "guard.body_size" && (g.Alert != "GRAFT-T-1" || g.Params["max"] != "5") {
					t.Fatalf("List: %+v", g)
				}
			}
		})
	}
}

func FuzzJSONDepth(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"]]"}]}`))
	f.Add([]byte(`[[[[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		if json.Unmarshal(b, &v) != nil {
			return
		}
		if d, want := jsonDepth(b, 1<<30), depthOf(v); d != want {
			t.Fatalf("jsonDepth(%s) = %d, want %d", b, d, want)
		}
	})
}

func depthOf(v any) int {
	max := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			max = maxInt(max, depthOf(e))
		}
		return max + 1
	case []any:
		for _, e := range x {
			max = maxInt(max, depthOf(e))
		}
		return max + 1
	}
	return 0
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func encodeStd(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestProvider(t *testing.T) {
	s := New(Options{})
	p := Provider{Guards: s}
	if err := p.Set(t.Context(), "example.com/m.F#abc", true, nil); !errors.Is(err, checks.ErrUnknown) {
		t.Fatalf("Set(site id) = %v, want checks.ErrUnknown", err)
	}
	if err := p.Set(t.Context(), "guard.json_depth", true, map[string]string{"max": "8"}); err != nil {
		t.Fatal(err)
	}
	cs, err := p.List(t.Context())
	if err != nil || len(cs) != 5 {
		t.Fatalf("List = %v, %v", cs, err)
	}
	for _, c := range cs {
		if c.ID == "guard.json_depth" && (!c.On || c.Limit != 8 || c.Provider != "guard" || c.Kind != "json_depth") {
			t.Fatalf("List: %+v", c)
		}
	}
}
