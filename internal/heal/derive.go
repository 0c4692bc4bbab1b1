package heal

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrNoRule is returned when no rule separates the crashing requests from
// the benign ones.
var ErrNoRule = errors.New("no rule separates the crashing requests from benign ones")

// head is a request's method and route template: requests are only ever
// generalized together when their heads agree.
type head struct{ method, template string }

func headOf(in *Input) head { return head{in.Method, Template(in.Path)} }

// profile is a request with its features computed once.
type profile struct {
	in    *Input
	head  head
	feats map[string]pred
}

func newProfile(in *Input) *profile {
	p := &profile{in: in, head: headOf(in), feats: map[string]pred{}}
	for _, f := range featurePreds(in) {
		p.feats[f.String()] = f
	}
	return p
}

// covers reports whether the derived match m (all of whose predicates are
// features) matches the profiled request. For derived rules this is
// equivalent to m.Matches(p.in), without walking the body again.
func (p *profile) covers(m *Match) bool {
	if !m.headMatches(p.in.Method, p.in.Path) {
		return false
	}
	for _, q := range m.preds {
		if _, ok := p.feats[q.String()]; !ok {
			return false
		}
	}
	return true
}

// Derive returns the narrowest rule that matches every request in crashing
// (their least general generalization in the feature lattice: the
// intersection of their features) and checks that it matches none of
// benign.
func Derive(crashing, benign []*Input) (*Match, error) {
	ps := make([]*profile, len(crashing))
	for i, in := range crashing {
		ps[i] = newProfile(in)
	}
	bs := make([]*profile, len(benign))
	for i, in := range benign {
		bs[i] = newProfile(in)
	}
	return derive(ps, bs)
}

func derive(crashing, benign []*profile) (*Match, error) {
	if len(crashing) == 0 {
		return nil, fmt.Errorf("derive rule: %w: no crashing request", ErrNoRule)
	}
	first := crashing[0]
	m := &Match{Method: first.in.Method, Path: literalPath(first.in.Path, false)}
	for _, c := range crashing[1:] {
		if c.head != first.head {
			return nil, fmt.Errorf("derive rule: %w: %s %s and %s %s differ in route", ErrNoRule,
				first.head.method, first.head.template, c.head.method, c.head.template)
		}
		if literalPath(c.in.Path, false) != m.Path {
			m.Path = first.head.template
		}
	}
	for key, f := range first.feats {
		all := true
		for _, c := range crashing[1:] {
			if _, ok := c.feats[key]; !ok {
				all = false
				break
			}
		}
		if all {
			m.preds = append(m.preds, f)
		}
	}
	m.normalize()
	m.sortEval()
	for _, b := range benign {
		if b.covers(m) {
			return nil, fmt.Errorf("derive rule: %w: %q matches benign %s %s", ErrNoRule, m.String(), b.in.Method, b.in.Path)
		}
	}
	return m, nil
}

// sample keeps a bounded sample of recent benign requests: a ring over all
// routes, and a smaller ring per route so that a busy route does not push
// out the evidence about a quiet one.
type sample struct {
	mu       sync.Mutex
	all      ring
	perHead  map[head]*ring
	order    []head // insertion order of perHead, for eviction
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
	in   *Input
	once sync.Once
	p    *profile
}

func (l *profileLazy) get() *profile {
	l.once.Do(func() { l.p = newProfile(l.in) })
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
	return &sample{all: ring{items: make([]*profileLazy, 0, total)}, perHead: map[head]*ring{}, maxHeads: heads, headSize: perHead}
}

func (s *sample) add(in *Input) { s.addLazy(&profileLazy{in: in}) }

func (s *sample) addLazy(l *profileLazy) {
	in := l.in
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all.add(l, cap(s.all.items))
	// The route template is built in a scratch buffer: looking a head up
	// by it allocates nothing; only a new head's template is copied.
	s.scratch = appendTemplate(s.scratch[:0], in.Path)
	r := s.perHead[head{in.Method, string(s.scratch)}]
	if r == nil {
		h := head{in.Method, string(s.scratch)}
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
func (s *sample) snapshot(h head) []*profileLazy {
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
