package rt

import (
	"runtime"
	"sync"
	"testing"
	"weak"
)

type sideObj struct {
	name string
	buf  [64]byte // not a tiny allocation: collected on its own
}

type sideFields struct{ depth, count int }

func TestSideFieldsPerObject(t *testing.T) {
	var s Side[sideObj, sideFields]
	a, b := &sideObj{name: "a"}, &sideObj{name: "b"}
	if got := *s.Of(a); got != (sideFields{}) {
		t.Fatalf("fields of a new object = %+v, want zero", got)
	}
	s.Of(a).depth = 3
	s.Of(b).count = 7
	s.Of(a).count++ // a again after b: the cache held b
	if got := *s.Of(a); got != (sideFields{depth: 3, count: 1}) {
		t.Errorf("a's fields = %+v", got)
	}
	if got := *s.Of(b); got != (sideFields{count: 7}) {
		t.Errorf("b's fields = %+v", got)
	}
	if s.Of(a) == s.Of(b) {
		t.Error("two objects share their fields")
	}
	// Cached answers for the last object only; Of answers nil for nil.
	if s.Cached(b) != s.Of(b) || s.Cached(a) != nil {
		t.Error("Cached: not the last object's fields, or an answer for another")
	}
	if s.Of(nil) != nil || s.Cached(nil) != nil {
		t.Error("fields for a nil object")
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}

// collectedAfterGCs reports whether w's object is gone within n
// collections.
func collectedAfterGCs[T any](w weak.Pointer[T], n int) bool {
	for range n {
		runtime.GC()
		if w.Value() == nil {
			return true
		}
	}
	return false
}

// TestSideDropsDeadObjects: the cache of the last object keeps it alive
// for a collection or two at most, and the entry goes with the object.
func TestSideDropsDeadObjects(t *testing.T) {
	var s Side[sideObj, sideFields]
	keep := &sideObj{name: "kept"}
	s.Of(keep).count = 1
	w := func() weak.Pointer[sideObj] {
		dead := &sideObj{name: "dead"}
		s.Of(dead).count = 2 // the last object looked up: cached
		return weak.Make(dead)
	}()
	if !collectedAfterGCs(w, 10) {
		t.Fatal("an object whose last use was a side-table lookup is still alive after 10 collections")
	}
	for i := 0; s.Len() != 1; i++ {
		if i == 100 {
			t.Fatalf("side table has %d entries after its object died, want 1 (the live one)", s.Len())
		}
		runtime.GC() // cleanups run after a collection, on their own goroutine
		runtime.Gosched()
	}
	if got := s.Of(keep).count; got != 1 {
		t.Errorf("live object's field = %d after collections, want 1", got)
	}
}

// TestSideAddressReuse: a new object at a dead one's address starts at
// zero values (the cache compares objects it keeps alive, never bare
// addresses).
func TestSideAddressReuse(t *testing.T) {
	var s Side[sideObj, sideFields]
	for i := range 2000 {
		o := &sideObj{}
		if got := s.Of(o).count; got != 0 {
			t.Fatalf("object %d starts with count %d: another object's fields", i, got)
		}
		s.Of(o).count = 1
		if i%100 == 99 {
			runtime.GC() // frees the earlier objects, whose addresses new ones may take
		}
	}
}

func TestSideConcurrent(t *testing.T) {
	var s Side[sideObj, sideFields]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &sideObj{}
			for i := range 1000 {
				s.Of(o).count++
				if s.Of(o).count != i+1 {
					t.Errorf("goroutine %d: count %d after %d increments", g, s.Of(o).count, i+1)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkSideOf(b *testing.B) {
	var s Side[sideObj, sideFields]
	o := &sideObj{}
	for b.Loop() {
		s.Of(o).count++
	}
}
