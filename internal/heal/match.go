package heal

import (
	"slices"
	"strings"
	"time"

	"github.com/graftdev/graft/api"
)

// matcher finds the first rule matching a request. Rules sit in a trie of
// path segments (literal children, a {} child, and /* rules that match any
// rest), so a request is only tested against the rules of its route; each
// candidate's predicates then run on one shared lazy view of the request.
type matcher struct {
	root  *node
	n     int
	needs bool // some rule looks at the body
}

type node struct {
	lit   map[string]*node
	param *node
	here  bucket // rules whose path ends at this node
	rest  bucket // rules whose path ends in /* at this node
}

// bucket holds the rules of one trie node. Rules with an equality
// predicate are indexed by their cheapest one (its subject and value), so
// that a thousand rules on one route, differing in a value, cost a few map
// lookups rather than a thousand evaluations.
type bucket struct {
	plain    []*rule
	subjects []subjKey
	byValue  map[subjKey]map[string][]*rule
}

type subjKey struct {
	src  source
	name string
}

func (b *bucket) add(r *rule) {
	// The anchor is the equality most likely to tell rules apart: a JSON
	// value, then a query value, then a header (headers such as
	// Content-Type are shared by many rules).
	var anchor *pred
	for _, p := range r.match.eval {
		if p.op == opEqual && (anchor == nil || anchorRank(p) > anchorRank(anchor)) {
			anchor = p
		}
	}
	if p := anchor; p != nil {
		k := subjKey{p.src, p.name}
		if b.byValue == nil {
			b.byValue = map[subjKey]map[string][]*rule{}
		}
		vals := b.byValue[k]
		if vals == nil {
			vals = map[string][]*rule{}
			b.byValue[k] = vals
			b.subjects = append(b.subjects, k)
		}
		vals[p.value] = append(vals[p.value], r)
		return
	}
	b.plain = append(b.plain, r)
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

func (b *bucket) try(in *Input, v *view, now time.Time) *rule {
	if r := try(b.plain, in, v, now); r != nil {
		return r
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
			if r := try(vals[x], in, v, now); r != nil {
				return r
			}
		}
	}
	return nil
}

func newMatcher(rules []*rule) *matcher {
	m := &matcher{root: &node{}, n: len(rules)}
	// Deterministic order: oldest first, then by id.
	slices.SortFunc(rules, func(a, b *rule) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, r := range rules {
		m.insert(r)
		for _, p := range r.match.preds {
			if p.src == srcBody || p.src == srcJSON {
				m.needs = true
			}
		}
	}
	return m
}

func (m *matcher) insert(r *rule) {
	path := r.match.Path
	n := m.root
	if path == "*" {
		n.rest.add(r)
		return
	}
	rest := strings.TrimPrefix(path, "/")
	for {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "*" && !more {
			n.rest.add(r)
			return
		}
		var next *node
		if isParam(seg) {
			if n.param == nil {
				n.param = &node{}
			}
			next = n.param
		} else {
			if n.lit == nil {
				n.lit = map[string]*node{}
			}
			next = n.lit[seg]
			if next == nil {
				next = &node{}
				n.lit[seg] = next
			}
		}
		n = next
		if !more {
			n.here.add(r)
			return
		}
		rest = tail
	}
}

// NeedsBody reports whether some rule inspects the body, so the proxy need
// only buffer bodies then.
func (m *matcher) NeedsBody() bool { return m.needs }

// match returns the first rule matching in that has not expired at now, or
// nil.
func (m *matcher) match(in *Input, now time.Time) *rule {
	if m.n == 0 {
		return nil
	}
	v := view{in: in}
	return m.walk(m.root, strings.TrimPrefix(in.Path, "/"), in, &v, now)
}

func (m *matcher) walk(n *node, rest string, in *Input, v *view, now time.Time) *rule {
	if r := n.rest.try(in, v, now); r != nil {
		return r
	}
	seg, tail, more := strings.Cut(rest, "/")
	if c := n.lit[seg]; c != nil {
		if r := m.step(c, tail, more, in, v, now); r != nil {
			return r
		}
	}
	if n.param != nil && seg != "" {
		return m.step(n.param, tail, more, in, v, now)
	}
	return nil
}

func (m *matcher) step(c *node, tail string, more bool, in *Input, v *view, now time.Time) *rule {
	if !more {
		return c.here.try(in, v, now)
	}
	return m.walk(c, tail, in, v, now)
}

func try(rules []*rule, in *Input, v *view, now time.Time) *rule {
	for _, r := range rules {
		if r.match.Method != "*" && r.match.Method != in.Method && !(r.match.Method == "GET" && in.Method == "HEAD") {
			continue
		}
		if r.expires != 0 && r.expires <= now.UnixNano() {
			continue
		}
		if r.match.predsHold(v) {
			return r
		}
	}
	return nil
}

func sortRules(rs []api.SealRule) {
	slices.SortFunc(rs, func(a, b api.SealRule) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
