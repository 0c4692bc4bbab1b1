package heal

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/internal/heal/rule"
	"github.com/graftdev/graft/internal/proxy"
)

// sample keeps a bounded sample of recent benign requests: a ring over all
// routes, and a smaller ring per route so that a busy route does not push
// out the evidence about a quiet one.
//
// A route's requests are all kept while they come less often than one per
// sampleGap; a busier route keeps one per sampleGap (admit), so that the
// proxy copies and packs a request only for the sample's sake at a bounded
// rate. The rings hold as many requests as before, over a longer time: a
// benign form that makes up a share of a route's traffic is in its ring in
// about that share either way; what a crash no longer sees are the
// requests of a busy route that came between two sampled ones.
//
// Adding runs on the request path, so it takes no lock and allocates
// nothing once its route is known: the rings are slots
// written with atomic stores, and routes are found in an open-addressed
// table of atomic pointers. Requests are kept packed (see packed), so the
// sample costs the garbage collector little. Only a new route takes the lock (to evict the
// oldest one when the table is full); reading the sample (a derivation)
// may see a ring mid-update, which only means a request more or less.
type sample struct {
	all      ring
	routes   []atomic.Pointer[route] // power of two, 4× maxHeads
	seed     maphash.Seed
	maxHeads int
	headSize int
	gap      int64 // sampleGap; benchmarks change it

	mu    sync.Mutex // serializes adding a route
	order []*route   // routes in the table, oldest first
}

type route struct {
	head rule.Head
	slot int // index in routes
	ring ring
	last atomic.Int64 // when admit last let a request in (unix nanoseconds)
}

// sampleGap is the least time between two requests admit lets into one
// route's ring: at most 500 a second per route are copied and packed, and
// a route's 128 slots span at least 256 ms of its traffic.
const sampleGap = 2 * time.Millisecond

type ring struct {
	items []atomic.Pointer[packed]
	next  atomic.Uint64
}

func newRing(size int) ring { return ring{items: make([]atomic.Pointer[packed], size)} }

func (r *ring) add(p *packed) {
	i := r.next.Add(1) - 1
	r.items[i%uint64(len(r.items))].Store(p)
}

func (r *ring) len() int { return int(min(r.next.Load(), uint64(len(r.items)))) }

func (r *ring) appendTo(out []*packed) []*packed {
	for i := range r.items {
		if p := r.items[i].Load(); p != nil {
			out = append(out, p)
		}
	}
	return out
}

// probes bounds the search for a route in the table.
const probes = 8

func newSample(total, heads, perHead int) *sample {
	n := 1
	for n < 4*heads {
		n *= 2
	}
	return &sample{all: newRing(total), routes: make([]atomic.Pointer[route], n), seed: maphash.MakeSeed(), maxHeads: heads, headSize: perHead, gap: int64(sampleGap)}
}

func (s *sample) hash(method string, template []byte) int {
	return int((maphash.String(s.seed, method) ^ maphash.Bytes(s.seed, template)) & uint64(len(s.routes)-1))
}

// find returns the route of method and template, nil when it has none.
func (s *sample) find(method string, template []byte, h int) *route {
	for i := range probes {
		rt := s.routes[(h+i)&(len(s.routes)-1)].Load()
		if rt != nil && rt.head.Method == method && rt.head.Template == string(template) {
			return rt
		}
	}
	return nil
}

// add keeps q, whatever the rate.
func (s *sample) add(q *proxy.Request) { s.put(s.lookup(q.Method, []byte(q.Path)), q) }

// admit returns the route of a benign request on method and path that is
// to be kept (put), or nil when its route already took one less than
// sampleGap before now (unix nanoseconds).
func (s *sample) admit(method string, path []byte, now int64) *route {
	rt := s.lookup(method, path)
	last := rt.last.Load()
	if now-last < s.gap || !rt.last.CompareAndSwap(last, now) {
		return nil
	}
	return rt
}

// lookup finds or adds the route of method and path. The template is
// built in a buffer on the stack: looking a route up allocates nothing;
// only a new route's template is copied.
func (s *sample) lookup(method string, path []byte) *route {
	var buf [128]byte
	tmpl := rule.AppendTemplate(buf[:0], path)
	h := s.hash(method, tmpl)
	rt := s.find(method, tmpl, h)
	if rt == nil {
		rt = s.addRoute(method, tmpl, h)
	}
	return rt
}

// put keeps q in rt's ring and the ring over all routes.
func (s *sample) put(rt *route, q *proxy.Request) {
	p := pack(q)
	s.all.add(p)
	rt.ring.add(p)
}

func (s *sample) addRoute(method string, template []byte, h int) *route {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt := s.find(method, template, h); rt != nil {
		return rt
	}
	if len(s.order) >= s.maxHeads {
		s.evictLocked(s.order[0])
	}
	free := -1
	var oldest *route
	for i := range probes {
		j := (h + i) & (len(s.routes) - 1)
		rt := s.routes[j].Load()
		if rt == nil {
			free = j
			break
		}
		if oldest == nil || slices.Index(s.order, rt) < slices.Index(s.order, oldest) {
			oldest = rt
		}
	}
	if free < 0 {
		// Every slot this route may use holds another: the oldest of
		// them makes room.
		free = oldest.slot
		s.evictLocked(oldest)
	}
	rt := &route{head: rule.Head{Method: method, Template: string(template)}, slot: free, ring: newRing(s.headSize)}
	s.routes[free].Store(rt)
	s.order = append(s.order, rt)
	return rt
}

func (s *sample) evictLocked(rt *route) {
	s.routes[rt.slot].Store(nil)
	s.order = slices.DeleteFunc(s.order, func(x *route) bool { return x == rt })
}

// snapshot returns the benign requests kept, those of route h first.
func (s *sample) snapshot(h rule.Head) []*packed {
	var out []*packed
	tmpl := []byte(h.Template)
	if rt := s.find(h.Method, tmpl, s.hash(h.Method, tmpl)); rt != nil {
		out = rt.ring.appendTo(out)
	}
	seen := make(map[*packed]bool, len(out))
	for _, p := range out {
		seen[p] = true
	}
	for _, p := range s.all.appendTo(nil) {
		if !seen[p] {
			out = append(out, p)
		}
	}
	return out
}

func (s *sample) len() int { return s.all.len() }

// routeLen is the number of requests kept for route h, -1 when it has no
// ring.
func (s *sample) routeLen(h rule.Head) int {
	tmpl := []byte(h.Template)
	if rt := s.find(h.Method, tmpl, s.hash(h.Method, tmpl)); rt != nil {
		return rt.ring.len()
	}
	return -1
}
