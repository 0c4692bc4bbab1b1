package rule

import (
	"errors"
	"strings"
	"testing"
)

func TestDerive(t *testing.T) {
	ct := map[string]string{"Content-Type": "application/json", "User-Agent": "load/1"}
	evil1 := req("POST", "/items/7", ct, `{"name":"a","tags":null,"n":1}`)
	evil2 := req("POST", "/items/9", ct, `{"name":"bb","tags":null,"n":2}`)
	benign := []*Input{
		req("POST", "/items/7", ct, `{"name":"a","tags":{"x":"y"},"n":1}`),
		req("POST", "/items/3", ct, `{"name":"c","n":5}`),
		req("GET", "/items/7", ct, ``),
	}
	tests := []struct {
		name     string
		crashing []*Input
		benign   []*Input
		wantErr  bool
		mustHave []string
		mustNot  []string
	}{
		{
			name: "one request", crashing: []*Input{evil1}, benign: benign,
			mustHave: []string{"POST /items/7 ", "json.tags=null", "json.name=a"},
		},
		{
			name: "two crashes generalize", crashing: []*Input{evil1, evil2}, benign: benign,
			mustHave: []string{"POST /items/{} ", "json.tags=null", "type(json.name)=string", "header.User-Agent=load/1"},
			mustNot:  []string{"json.name=a", "json.n=1"},
		},
		{
			name: "benign identical to crasher", crashing: []*Input{evil1}, benign: []*Input{evil1}, wantErr: true,
		},
		{
			name: "different routes", crashing: []*Input{evil1, req("POST", "/other", ct, `{}`)}, wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Derive(profiles(tt.crashing), profiles(tt.benign))
			if tt.wantErr {
				if !errors.Is(err, ErrNoRule) {
					t.Fatalf("Derive = %v, %v; want ErrNoRule", m, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := m.String()
			for _, w := range tt.mustHave {
				if !strings.Contains(s, w) {
					t.Errorf("rule %q lacks %q", s, w)
				}
			}
			for _, w := range tt.mustNot {
				if strings.Contains(s, w) {
					t.Errorf("rule %q has %q", s, w)
				}
			}
			for _, c := range tt.crashing {
				if !m.Matches(c) {
					t.Errorf("rule %q misses crashing %s %s", s, c.Method, c.Path)
				}
			}
			for _, b := range tt.benign {
				if m.Matches(b) {
					t.Errorf("rule %q matches benign %s %s %s", s, b.Method, b.Path, b.Body)
				}
			}
		})
	}
}

func profiles(ins []*Input) []*Profile {
	ps := make([]*Profile, len(ins))
	for i, in := range ins {
		ps[i] = NewProfile(in)
	}
	return ps
}
