package heal

import (
	"slices"
	"sync"

	"github.com/graftdev/graft/internal/heal/rule"
)

// sample keeps a bounded sample of recent benign requests: a ring over all
// routes, and a smaller ring per route so that a busy route does not push
// out the evidence about a quiet one.
type sample struct {
	mu       sync.Mutex
	all      ring
	perHead  map[rule.Head]*ring
	order    []rule.Head // insertion order of perHead, for eviction
	maxHeads int
	headSize int
	scratch  []byte // add's route template
}

type ring struct {
	items []*profileLazy
	next  int
}

// profileLazy computes a benign request's features only when a derivation
// needs them: most benign requests are never looked at.
type profileLazy struct {
	in   *rule.Input
	once sync.Once
	p    *rule.Profile
}

func (l *profileLazy) get() *rule.Profile {
	l.once.Do(func() { l.p = rule.NewProfile(l.in) })
	return l.p
}

func (r *ring) add(p *profileLazy, size int) {
	if len(r.items) < size {
		r.items = append(r.items, p)
		return
	}
	r.items[r.next] = p
	r.next = (r.next + 1) % size
}

func newSample(total, heads, perHead int) *sample {
	return &sample{all: ring{items: make([]*profileLazy, 0, total)}, perHead: map[rule.Head]*ring{}, maxHeads: heads, headSize: perHead}
}

func (s *sample) add(in *rule.Input) { s.addLazy(&profileLazy{in: in}) }

func (s *sample) addLazy(l *profileLazy) {
	in := l.in
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all.add(l, cap(s.all.items))
	// The route template is built in a scratch buffer: looking a head up
	// by it allocates nothing; only a new head's template is copied.
	s.scratch = rule.AppendTemplate(s.scratch[:0], in.Path)
	r := s.perHead[rule.Head{Method: in.Method, Template: string(s.scratch)}]
	if r == nil {
		h := rule.Head{Method: in.Method, Template: string(s.scratch)}
		if len(s.perHead) >= s.maxHeads {
			delete(s.perHead, s.order[0])
			s.order = s.order[1:]
		}
		r = &ring{}
		s.perHead[h] = r
		s.order = append(s.order, h)
	}
	r.add(l, s.headSize)
}

// snapshot returns the benign requests kept, those of route h first.
func (s *sample) snapshot(h rule.Head) []*profileLazy {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*profileLazy
	if r := s.perHead[h]; r != nil {
		out = append(out, r.items...)
	}
	for _, l := range s.all.items {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

func (s *sample) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all.items)
}
