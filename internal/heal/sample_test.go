package heal

import (
	"fmt"
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
	seen := map[*proxy.Request]bool{}
	for i, q := range snap {
		if seen[q] {
			t.Fatalf("snapshot lists %s twice", q.Path)
		}
		seen[q] = true
		if i < 3 && rule.Template(q.Path) != "/r1/{}" {
			t.Fatalf("snapshot[%d] = %s, want the route's own first", i, q.Path)
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
