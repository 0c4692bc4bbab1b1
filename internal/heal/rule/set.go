package rule

import (
	"strings"
	"time"
)

// Entry is one rule of a Set: its condition, when it stops matching, and
// what the caller wants back when it matches.
type Entry[T any] struct {
	Match   *Match
	Expires int64 // unix nanoseconds; 0 never
	Value   T
}

// Set finds the first rule matching a request. Rules sit in a trie of path
// segments (literal children, a {} child, and /* rules that match any rest),
// so a request is only tested against the rules of its route; each
// candidate's predicates then run on one shared lazy view of the request.
// A Set is immutable once built and safe for concurrent use.
type Set[T any] struct {
	root  *node[T]
	n     int
	needs bool // some rule looks at the body
}

type node[T any] struct {
	lit   map[string]*node[T]
	param *node[T]
	here  bucket[T] // rules whose path ends at this node
	rest  bucket[T] // rules whose path ends in /* at this node
}

// bucket holds the rules of one trie node. Rules with an equality
// predicate are indexed by their cheapest one (its subject and value), so
// that a thousand rules on one route, differing in a value, cost a few map
// lookups rather than a thousand evaluations.
type bucket[T any] struct {
	plain    []*Entry[T]
	subjects []subjKey
	byValue  map[subjKey]map[string][]*Entry[T]
}

type subjKey struct {
	src  source
	name string
}

func (b *bucket[T]) add(e *Entry[T]) {
	// The anchor is the equality most likely to tell rules apart: a JSON
	// value, then a query value, then a header (headers such as
	// Content-Type are shared by many rules).
	var anchor *pred
	for _, p := range e.Match.eval {
		if p.op == opEqual && (anchor == nil || anchorRank(p) > anchorRank(anchor)) {
			anchor = p
		}
	}
	if p := anchor; p != nil {
		k := subjKey{p.src, p.name}
		if b.byValue == nil {
			b.byValue = map[subjKey]map[string][]*Entry[T]{}
		}
		vals := b.byValue[k]
		if vals == nil {
			vals = map[string][]*Entry[T]{}
			b.byValue[k] = vals
			b.subjects = append(b.subjects, k)
		}
		vals[p.value] = append(vals[p.value], e)
		return
	}
	b.plain = append(b.plain, e)
}

func anchorRank(p *pred) int {
	switch p.src {
	case srcJSON:
		return 3
	case srcQuery:
		return 2
	}
	return 1
}

func (b *bucket[T]) try(in *Input, v *view, now int64) *Entry[T] {
	if e := try(b.plain, in, v, now); e != nil {
		return e
	}
	for _, k := range b.subjects {
		vals := b.byValue[k]
		var have []string
		switch k.src {
		case srcQuery:
			have = v.queryValues()[k.name]
		case srcHeader:
			have = in.Header[k.name]
		default:
			if f := v.fact(k.src, k.name); f != nil {
				have = f.values
			}
		}
		for _, x := range have {
			if e := try(vals[x], in, v, now); e != nil {
				return e
			}
		}
	}
	return nil
}

// NewSet indexes entries; when several match a request, the earliest in
// entries wins.
func NewSet[T any](entries []*Entry[T]) *Set[T] {
	s := &Set[T]{root: &node[T]{}, n: len(entries)}
	for _, e := range entries {
		s.insert(e)
		for _, p := range e.Match.preds {
			if p.src == srcBody || p.src == srcJSON {
				s.needs = true
			}
		}
	}
	return s
}

func (s *Set[T]) insert(e *Entry[T]) {
	path := e.Match.Path
	n := s.root
	if path == "*" {
		n.rest.add(e)
		return
	}
	rest := strings.TrimPrefix(path, "/")
	for {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "*" && !more {
			n.rest.add(e)
			return
		}
		var next *node[T]
		if isParam(seg) {
			if n.param == nil {
				n.param = &node[T]{}
			}
			next = n.param
		} else {
			if n.lit == nil {
				n.lit = map[string]*node[T]{}
			}
			next = n.lit[seg]
			if next == nil {
				next = &node[T]{}
				n.lit[seg] = next
			}
		}
		n = next
		if !more {
			n.here.add(e)
			return
		}
		rest = tail
	}
}

// Len is the number of rules in s.
func (s *Set[T]) Len() int { return s.n }

// NeedsBody reports whether some rule inspects the body, so the proxy need
// only buffer bodies then.
func (s *Set[T]) NeedsBody() bool { return s.needs }

// Match returns the first entry matching in that has not expired at now.
func (s *Set[T]) Match(in *Input, now time.Time) (*Entry[T], bool) {
	if s.n == 0 {
		return nil, false
	}
	v := view{in: in}
	e := s.walk(s.root, strings.TrimPrefix(in.Path, "/"), in, &v, now.UnixNano())
	return e, e != nil
}

func (s *Set[T]) walk(n *node[T], rest string, in *Input, v *view, now int64) *Entry[T] {
	if e := n.rest.try(in, v, now); e != nil {
		return e
	}
	seg, tail, more := strings.Cut(rest, "/")
	if c := n.lit[seg]; c != nil {
		if e := s.step(c, tail, more, in, v, now); e != nil {
			return e
		}
	}
	if n.param != nil && seg != "" {
		return s.step(n.param, tail, more, in, v, now)
	}
	return nil
}

func (s *Set[T]) step(c *node[T], tail string, more bool, in *Input, v *view, now int64) *Entry[T] {
	if !more {
		return c.here.try(in, v, now)
	}
	return s.walk(c, tail, in, v, now)
}

func try[T any](entries []*Entry[T], in *Input, v *view, now int64) *Entry[T] {
	for _, e := range entries {
		if e.Match.Method != "*" && e.Match.Method != in.Method && !(e.Match.Method == "GET" && in.Method == "HEAD") {
			continue
		}
		if e.Expires != 0 && e.Expires <= now {
			continue
		}
		if e.Match.predsHold(v) {
			return e
		}
	}
	return nil
}
