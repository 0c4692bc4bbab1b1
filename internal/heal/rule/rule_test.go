package rule

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestParseMatch(t *testing.T) {
	tests := []struct {
		in, want string // want "" means the same as in
		err      bool
	}{
		{in: "GET /items/{}"},
		{in: "* *"},
		{in: "POST /api/* json.tags=null type(json.tags)=null"},
		{in: `GET /search query.q="a b" len(query.q)=64..`, want: `GET /search len(query.q)=64.. query.q="a b"`},
		{in: "GET /x header.x-debug=1", want: "GET /x header.X-Debug=1"},
		{in: "GET /x query.a len(query.a)=1..7", want: "GET /x len(query.a)=1..7"},
		{in: "GET /x !query.a"},
		{in: `POST /x json."a.b"[].c=1 depth(json)=17..`, want: `POST /x depth(json)=17.. json."a.b"[].c=1`},
		{in: "POST /x len(body)=1024.."},
		{in: "POST /x len(body)=5", want: "POST /x len(body)=5..5"},
		{in: `GET "/a b"`},
		{in: "GET", err: true},
		{in: "get /x", err: true},
		{in: "GET x", err: true},
		{in: "GET /a*/b", err: true},
		{in: "GET /x foo.bar", err: true},
		{in: "GET /x kind(query.a)=weird", err: true},
		{in: "GET /x type(query.a)=string", err: true},
		{in: "GET /x depth(json.a)=1..2", err: true},
		{in: "GET /x len(body)=9..3", err: true},
		{in: "GET /x body=1", err: true},
		{in: "GET /x !query.a=1", err: true},
		{in: `GET /x query.a="unterminated`, err: true},
		{in: "GET /x json..a", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := Parse(tt.in)
			if tt.err {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("Parse(%q) = %v, %v; want a syntax error", tt.in, m, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if m.String() != want {
				t.Fatalf("String() = %q, want %q", m.String(), want)
			}
			again, err := Parse(m.String())
			if err != nil || again.String() != m.String() || again.ID() != m.ID() {
				t.Fatalf("round trip: %v, %v", again, err)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	evil := req("POST", "/items/7?debug=1", map[string]string{"Content-Type": "application/json"}, `{"name":"x","tags":null}`)
	good := req("POST", "/items/8", map[string]string{"Content-Type": "application/json"}, `{"name":"x","tags":{"a":"b"}}`)
	head := req("HEAD", "/items/7", nil, "")
	tests := []struct {
		rule string
		in   *Input
		want bool
	}{
		{"POST /items/{} type(json.tags)=null", evil, true},
		{"POST /items/{} type(json.tags)=null", good, false},
		{"POST /items/{id} json.tags=null", evil, true},
		{"POST /items/* json.name=x", good, true},
		{"POST /items json.name=x", good, false},
		{"POST /items/{}/x", evil, false},
		{"GET /items/{}", head, true},
		{"* * query.debug=1", evil, true},
		{"* * query.debug=2", evil, false},
		{"* * !query.debug", good, true},
		{"* * !query.debug", evil, false},
		{"POST * len(body)=16..63", evil, true},
		{"POST * len(body)=64..", evil, false},
		{"POST * kind(header.Content-Type)=text", evil, true},
		{"POST * kind(header.Content-Type)=word", evil, false},
		{"POST * header.content-type=application/json", evil, true},
		{"POST * depth(json)=2..2", good, true},
		{"POST * depth(json)=2..2", evil, false},
		{"PUT *", evil, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s %s", tt.rule, tt.in.Method, tt.in.Path), func(t *testing.T) {
			m, err := Parse(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Matches(tt.in); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
			set := NewSet([]*Entry[int]{{Match: m}})
			if _, got := set.Match(tt.in, time.Now()); got != tt.want {
				t.Fatalf("matcher = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseMatch(f *testing.F) {
	for _, s := range []string{"GET /a/{}/* query.x=1 !header.Y", `POST "/a b" json."k"[].v="q" len(body)=3..`, "* * depth(json)=1..", "GET /x kind(query.a)=hex"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(m.String())
		if err != nil {
			t.Fatalf("canonical text %q of %q does not parse: %v", m.String(), s, err)
		}
		if again.String() != m.String() {
			t.Fatalf("not canonical: %q -> %q", m.String(), again.String())
		}
	})
}
