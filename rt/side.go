package rt

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
	"weak"
)

// Side holds the fields a patch added to struct type K, for objects that
// have the running program's layout, which has no room for them: a V per
// object, zero until first written, keyed weakly by the object so that an
// entry goes when its object does. Patch plugins declare one per type
// that gained fields and reach a new field f of x as side.Of(x).f.
//
// Code that works on one object in a loop (a parser's state, per token)
// looks the same object up again and again, so the last object looked up
// is remembered and found with one pointer compare. The cache holds that
// object strongly (a weak pointer's Value costs a span lookup per call,
// and a bare address could be a freed object's, reused); it is emptied
// after every garbage collection, so a dead object outlives its last
// lookup by at most two collections.
type Side[K, V any] struct {
	m    sync.Map // weak.Pointer[K] → *V
	last atomic.Pointer[sideEntry]
	once sync.Once
}

// sideEntry is the last object looked up (a *K) and its fields (a *V).
// Of is not inlined (a generic method's shaped body is over the inliner's
// budget, typed or not); plugins inline Cached, or a per-call cache of
// their own, in front of it (internal/patch/plugingen).
type sideEntry struct{ k, v unsafe.Pointer }

// Cached returns p's fields when p is the last object looked up, else
// nil. It inlines (Of does not), so generated code that looks an object up
// once per call tries it first: a load and a compare instead of a call.
func (s *Side[K, V]) Cached(p *K) *V {
	if c := s.last.Load(); c != nil && c.k == unsafe.Pointer(p) {
		return (*V)(c.v)
	}
	return nil
}

// Of returns p's fields, nil for a nil p (so that the access through it
// fails as the original's through p would).
func (s *Side[K, V]) Of(p *K) *V {
	// Cached's test written out: calling Cached and testing its answer
	// for nil adds a compare and a branch (2.26 -> 2.57 ns, BenchmarkSideOf).
	if c := s.last.Load(); c != nil && c.k == unsafe.Pointer(p) {
		return (*V)(c.v)
	}
	return s.lookup(p)
}

func (s *Side[K, V]) lookup(p *K) *V {
	if p == nil {
		return nil
	}
	s.once.Do(func() { forgetAfterGC(s.forget) })
	k := weak.Make(p)
	v, ok := s.m.Load(k)
	if !ok {
		var loaded bool
		v, loaded = s.m.LoadOrStore(k, new(V))
		if !loaded {
			runtime.AddCleanup(p, func(k weak.Pointer[K]) { s.m.Delete(k) }, k)
		}
	}
	s.last.Store(&sideEntry{unsafe.Pointer(p), unsafe.Pointer(v.(*V))})
	return v.(*V)
}

// forget empties the cache of the last object.
func (s *Side[K, V]) forget() { s.last.Store(nil) }

// Len returns the number of objects with an entry (for tests and
// diagnostics).
func (s *Side[K, V]) Len() int {
	n := 0
	s.m.Range(func(any, any) bool { n++; return true })
	return n
}

var gcWatch struct {
	mu      sync.Mutex
	forgets []func()
	started bool
}

// forgetAfterGC calls f after every garbage collection from now on.
func forgetAfterGC(f func()) {
	gcWatch.mu.Lock()
	defer gcWatch.mu.Unlock()
	gcWatch.forgets = append(gcWatch.forgets, f)
	if !gcWatch.started {
		gcWatch.started = true
		watchGC()
	}
}

// watchGC arranges for the forget functions to run once the next garbage
// collection has found a fresh sentinel unreachable, and then to watch for
// the one after. The sentinel has no pointers and is not tiny (16 bytes
// or more), so it is an allocation of its own and its cleanup runs.
func watchGC() {
	runtime.AddCleanup(new([32]byte), func(struct{}) {
		gcWatch.mu.Lock()
		fs := gcWatch.forgets
		gcWatch.mu.Unlock()
		for _, f := range fs {
			f()
		}
		watchGC()
	}, struct{}{})
}
