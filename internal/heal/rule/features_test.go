package rule

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

func req(method, target string, hdr map[string]string, body string) *Input {
	path, query, _ := cut(target, "?")
	in := &Input{Method: method, Path: path, RawQuery: query, Header: http.Header{}, Body: []byte(body), BodyLen: int64(len(body))}
	for k, v := range hdr {
		in.Header.Set(k, v)
	}
	return in
}

func cut(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

func TestTemplate(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/", "/"},
		{"/users", "/users"},
		{"/users/42", "/users/{}"},
		{"/users/42/posts/7", "/users/{}/posts/{}"},
		{"/v1/items", "/v1/items"},
		{"/objects/deadbeef01", "/objects/{}"},
		{"/u/123e4567-e89b-12d3-a456-426614174000", "/u/{}"},
		{"/files/report2024", "/files/report2024"},
		{"/tok/a1b2c3d4e5f6g7h8i9", "/tok/{}"},
		{"/n/-1.5", "/n/{}"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := Template(tt.path); got != tt.want {
				t.Fatalf("Template(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestKindAndClass(t *testing.T) {
	kindTests := []struct{ in, want string }{
		{"", "empty"}, {"123", "digits"}, {"abc", "alpha"}, {"deadbeef01", "hex"}, {"deadbeef", "alpha"},
		{"-1", "number"}, {"1e5", "number"}, {"a_b-c.d", "word"}, {"a b", "text"}, {"a\x00", "control"}, {"\xff", "binary"},
	}
	for _, tt := range kindTests {
		if got := kind(tt.in); got != tt.want {
			t.Errorf("kind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	classTests := []struct{ n, lo, hi int }{
		{0, 0, 0}, {1, 1, 7}, {7, 1, 7}, {8, 8, 15}, {100, 64, 255}, {65535, 4096, 65535}, {1 << 20, 65536, -1},
	}
	for _, tt := range classTests {
		if lo, hi := class(lenClasses, tt.n); lo != tt.lo || hi != tt.hi {
			t.Errorf("class(%d) = %d..%d, want %d..%d", tt.n, lo, hi, tt.lo, tt.hi)
		}
	}
}

func TestFeatures(t *testing.T) {
	in := req("POST", "/items/7?debug=1&q=hello%20world", map[string]string{"Content-Type": "application/json", "Content-Length": "99"},
		`{"name":"x","tags":null,"items":[{"id":1},{"id":2,"extra":true}],"deep":{"a":{"b":[]}}}`)
	got := Features(in)
	want := []string{
		`query.debug=1`, `kind(query.debug)=digits`, `len(query.debug)=1..7`,
		`query.q="hello world"`, `kind(query.q)=text`,
		`header.Content-Type=application/json`, `header.Content-Length`,
		`len(body)=64..255`,
		`type(json)=object`, `depth(json)=3..4`, `len(json)=1..7`,
		`json.tags=null`, `type(json.tags)=null`,
		`json.name=x`, `kind(json.name)=alpha`, `type(json.name)=string`,
		`type(json.items)=array`, `len(json.items)=1..7`,
		`json.items[].id=1`, `json.items[].id=2`, `type(json.items[].id)=number`,
		`json.items[].extra=true`, `json.items[].extra`,
		`type(json.deep.a.b)=array`, `len(json.deep.a.b)=0..0`,
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("Features lacks %s\ngot %q", w, got)
		}
	}
	for _, bad := range []string{`header.Content-Length=99`, `json.name`, `len(json.tags)=0..0`} {
		// json.name presence is in the set (it is a feature), but
		// Content-Length's value never is: it differs on every request.
		if bad == `json.name` {
			continue
		}
		if slices.Contains(got, bad) {
			t.Errorf("Features has %s", bad)
		}
	}
	// Every feature holds for its request and parses back to itself.
	for _, f := range got {
		m, err := Parse("POST /items/7 " + f)
		if err != nil {
			t.Fatalf("feature %q does not parse: %v", f, err)
		}
		if !m.Matches(in) {
			t.Errorf("feature %q does not hold for its own request", f)
		}
	}
}

func TestFeaturesTruncatedBody(t *testing.T) {
	in := req("POST", "/x", nil, `{"a":1}`)
	in.BodyLen = 1 << 20 // only a prefix was captured
	for _, f := range Features(in) {
		if f == "json.a=1" {
			t.Fatalf("JSON facts drawn from a body prefix: %q", Features(in))
		}
		if f == "len(body)=65536.." {
			return
		}
	}
	t.Fatalf("length class of the full body missing: %q", Features(in))
}

func FuzzFeatures(f *testing.F) {
	f.Add("GET", "/a/1", "x=1&y=", "text/plain", `{"a":[1,{"b":"c"}]}`)
	f.Add("POST", "/", "", "", `[[[[]]]]`)
	f.Add("PUT", "/a b/\"q\"", "%zz=1&k=\x00", "\xff", `{"a.b":{"[]":null}}`)
	f.Fuzz(func(t *testing.T, method, path, query, ctype, body string) {
		if !validMethod(method) || len(path) == 0 || path[0] != '/' {
			return
		}
		in := &Input{Method: method, Path: path, RawQuery: query, Header: http.Header{"Content-Type": {ctype}}, Body: []byte(body), BodyLen: int64(len(body))}
		feats := Features(in)
		m, err := Derive([]*Profile{NewProfile(in)}, nil)
		if err != nil {
			t.Fatalf("Derive(one request): %v", err)
		}
		if !m.Matches(in) {
			t.Fatalf("derived rule %q does not match its own request", m)
		}
		back, err := Parse(m.String())
		if err != nil {
			t.Fatalf("derived rule %q does not parse: %v", m, err)
		}
		if back.String() != m.String() || !back.Matches(in) {
			t.Fatalf("round trip %q -> %q", m, back)
		}
		set := NewSet([]*Entry[int]{{Match: back}})
		if _, ok := set.Match(in, zeroTime); !ok {
			t.Fatalf("matcher misses rule %q for its own request (%d features)", m, len(feats))
		}
	})
}

var zeroTime = time.Time{}
