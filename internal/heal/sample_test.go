package heal

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/graftdev/graft/internal/heal/rule"
	"github.com/graftdev/graft/internal/proxy"
)

func TestSampleBounded(t *testing.T) {
	get := func(path string) *proxy.Request { return &proxy.Request{Method: "GET", Path: path} }
	s := newSample(8, 2, 3)
	for i := range 20 {
		s.add(get(fmt.Sprintf("/r%d/%d", i%2, i)))
	}
	s.add(get("/r2/1")) // a third route evicts the oldest, /r0
	r0, r1, r2 := rule.Head{Method: "GET", Template: "/r0/{}"}, rule.Head{Method: "GET", Template: "/r1/{}"}, rule.Head{Method: "GET", Template: "/r2/{}"}
	if s.routeLen(r0) >= 0 || s.routeLen(r2) != 1 {
		t.Fatalf("eviction kept /r0 (%d) or lost /r2 (%d)", s.routeLen(r0), s.routeLen(r2))
	}
	if n := s.len(); n != 8 {
		t.Fatalf("global ring holds %d, want 8", n)
	}
	if n := len(s.order); n != 2 {
		t.Fatalf("%d routes kept, want 2", n)
	}
	if n := s.routeLen(r1); n != 3 {
		t.Fatalf("busy route holds %d, want 3", n)
	}
	// The busy route's ring holds its latest requests; the snapshot lists
	// them first, then the rest of the global ring, each once.
	snap := s.snapshot(r1)
	if len(snap) != 8 {
		t.Fatalf("snapshot holds %d, want 8", len(snap))
	}
	seen := map[string]bool{}
	for i, p := range snap {
		in, err := p.unpack()
		if err != nil {
			t.Fatal(err)
		}
		if seen[in.Path] {
			t.Fatalf("snapshot lists %s twice", in.Path)
		}
		seen[in.Path] = true
		if i < 3 && rule.Template(in.Path) != "/r1/{}" {
			t.Fatalf("snapshot[%d] = %s, want the route's own first", i, in.Path)
		}
	}
}

// TestSampleRouteTableFull checks that routes hashing to one full probe
// window still get a ring, by evicting the oldest route of the window.
func TestSampleRouteTableFull(t *testing.T) {
	s := newSample(16, 64, 2)
	for i := range 1000 {
		s.add(&proxy.Request{Method: "GET", Path: fmt.Sprintf("/route-%c%c/x", 'a'+i%26, 'a'+i/26%26)})
		if n := len(s.order); n > 64 {
			t.Fatalf("%d routes kept, want at most 64", n)
		}
	}
	last := rule.Head{Method: "GET", Template: fmt.Sprintf("/route-%c%c/x", 'a'+999%26, 'a'+999/26%26)}
	if s.routeLen(last) != 1 {
		t.Fatalf("latest route holds %d, want 1", s.routeLen(last))
	}
	n := 0
	for i := range s.routes {
		if rt := s.routes[i].Load(); rt != nil {
			n++
			if s.routes[rt.slot].Load() != rt {
				t.Fatalf("route %v is not in its slot", rt.head)
			}
		}
	}
	if n != len(s.order) {
		t.Fatalf("table holds %d routes, order %d", n, len(s.order))
	}
}

func TestPackRoundTrip(t *testing.T) {
	for _, q := range []*proxy.Request{
		{ID: 1, Method: "GET", Path: "/"},
		{ID: 1 << 40, Method: "POST", Path: "/items/7", RawQuery: "a=1&b=%zz",
			Header: http.Header{"Content-Type": {"application/json"}, "X-Multi": {"a", "", "c"}},
			Body:   []byte(`{"tags":null}`), BodyLen: 13},
		{ID: 3, Method: "PUT", Path: "/big", Body: bytes.Repeat([]byte{0, 0xff}, 4096), BodyLen: -1},
	} {
		t.Run(q.Method+" "+q.Path, func(t *testing.T) {
			p := pack(q)
			in, err := p.unpack()
			if err != nil {
				t.Fatal(err)
			}
			want := &rule.Input{ID: q.ID, Method: q.Method, Path: q.Path, RawQuery: q.RawQuery, Header: q.Header, Body: q.Body, BodyLen: q.BodyLen}
			if want.Header == nil {
				want.Header = http.Header{}
			}
			if !reflect.DeepEqual(in, want) {
				t.Fatalf("unpack = %+v, want %+v", in, want)
			}
			if m, path, err := p.head(); err != nil || m != q.Method || path != q.Path {
				t.Fatalf("head = %q %q %v", m, path, err)
			}
			// A truncated buffer is refused, never misread.
			for n := range len(p.b) {
				if _, err := (&packed{b: p.b[:n]}).unpack(); err == nil {
					t.Fatalf("unpack of %d of %d bytes succeeded", n, len(p.b))
				}
			}
		})
	}
}

// TestSampleAdmit: at high rates a route keeps one request per sampleGap,
// and a busy route does not use up another's turn.
func TestSampleAdmit(t *testing.T) {
	gap := int64(sampleGap)
	steps := []struct {
		method, path string
		at           int64 // nanoseconds
		want         bool
	}{
		{"GET", "/items/1", 1_000_000_000, true}, // a route's first request
		{"GET", "/items/2", 1_000_000_000 + 1, false},
		{"GET", "/items/3", 1_000_000_000 + gap - 1, false},
		{"POST", "/items/3", 1_000_000_000 + gap - 1, true}, // another route (method) in the busy one's gap
		{"GET", "/other", 1_000_000_000 + gap - 1, true},
		{"GET", "/items/4", 1_000_000_000 + gap, true}, // the gap is over
		{"GET", "/items/5", 1_000_000_000 + gap + 1, false},
		{"GET", "/other", 1_000_000_000 + 3*gap, true},
	}
	s := newSample(64, 8, 8)
	kept := 0
	for i, st := range steps {
		rt := s.admit(st.method, []byte(st.path), st.at)
		if (rt != nil) != st.want {
			t.Fatalf("step %d: %s %s at %d admitted = %v, want %v", i, st.method, st.path, st.at, rt != nil, st.want)
		}
		if rt == nil {
			continue
		}
		if rt.head != (rule.Head{Method: st.method, Template: rule.Template(st.path)}) {
			t.Fatalf("step %d: route %+v", i, rt.head)
		}
		s.put(rt, &proxy.Request{Method: st.method, Path: st.path})
		kept++
	}
	if s.len() != kept {
		t.Fatalf("sample holds %d, want the %d admitted", s.len(), kept)
	}
	if n := s.routeLen(rule.Head{Method: "GET", Template: "/items/{}"}); n != 2 {
		t.Fatalf("busy route holds %d, want 2", n)
	}
}
