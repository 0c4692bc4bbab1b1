package heal

import (
	"fmt"
	"testing"

	"github.com/graftdev/graft/internal/heal/rule"
)

func TestSampleBounded(t *testing.T) {
	s := newSample(8, 2, 3)
	for i := range 20 {
		s.add(req("GET", fmt.Sprintf("/r%d/%d", i%2, i), nil, ""))
	}
	s.add(req("GET", "/r2/1", nil, "")) // a third route evicts the oldest, /r0
	if s.perHead[rule.Head{Method: "GET", Template: "/r0/{}"}] != nil || s.perHead[rule.Head{Method: "GET", Template: "/r2/{}"}] == nil {
		t.Fatalf("eviction kept %v", s.order)
	}
	if n := s.len(); n != 8 {
		t.Fatalf("global ring holds %d, want 8", n)
	}
	if n := len(s.perHead); n != 2 {
		t.Fatalf("%d routes kept, want 2", n)
	}
	if r := s.perHead[rule.Head{Method: "GET", Template: "/r1/{}"}]; len(r.items) != 3 {
		t.Fatalf("busy route holds %d, want 3", len(r.items))
	}
	for h, r := range s.perHead {
		if len(r.items) > 3 {
			t.Fatalf("route %v holds %d, want 3", h, len(r.items))
		}
	}
}
