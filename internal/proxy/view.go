package proxy

import (
	"bytes"
	"time"

	"github.com/graftdev/graft/internal/proxy/http1"
)

// View is the request being proxied as the lazy hooks (Hooks.Admit,
// Hooks.Complete) see it: its ID, method and path come straight from the
// parsed head, and the copy that Inspect and Observe get (Request) is made
// only when a hook asks for it. A hook that needs the whole request only
// now and then (self-healing: when a rule or guard is there to see it, or
// when the request is sampled as evidence) thus costs nothing to the
// requests it lets pass without a look.
//
// A View is valid only during the hook call that gets it: the proxy reuses
// it for the connection's next request. What Request returns may be kept.
type View struct {
	x    *exchange
	done bool // Complete's view: the request has been answered
}

// ID is the request's id, the same as its Request's.
func (v *View) ID() uint64 { return v.x.id }

// Gen is the backend generation that answered the request (Complete); 0
// for Admit, which runs before a backend is chosen.
func (v *View) Gen() int {
	if v.done {
		return v.x.gen
	}
	return 0
}

// Time is when the proxy began reading the request (Request.Time).
func (v *View) Time() time.Time { return v.x.start }

// Method returns the request method; the common methods without
// allocating.
func (v *View) Method() string {
	m := v.x.hd.Method
	for _, s := range commonMethods {
		if string(m) == s {
			return s
		}
	}
	return string(m)
}

var commonMethods = [...]string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"}

// AppendPath appends the request's URL path (Request.Path: no query,
// escapes decoded) to dst; a plain origin-form target without escapes
// allocates nothing.
func (v *View) AppendPath(dst []byte) []byte {
	t := v.x.hd.Target
	if i := bytes.IndexByte(t, '?'); i >= 0 {
		t = t[:i]
	}
	if len(t) > 0 && t[0] == '/' && bytes.IndexByte(t, '%') < 0 {
		return append(dst, t...)
	}
	path, _ := http1.SplitTarget(string(v.x.hd.Target))
	return append(dst, path...)
}

// Request returns the copy Inspect (for Admit) or Observe (for Complete)
// would get; it is made on the first call and shared by later ones for the
// same request, so hooks must treat it as read-only.
func (v *View) Request() *Request {
	if v.done {
		return v.x.completed()
	}
	return v.x.admitted()
}

// hookSet is the Hooks as set, with Inspect and Admit (Observe and
// Complete) folded into the one function the data path calls.
type hookSet struct {
	Hooks
	admit    func(*View) *Answer
	complete func(*View, *Response)
}

func newHookSet(h Hooks) *hookSet {
	return &hookSet{Hooks: h, admit: admitOf(h), complete: completeOf(h)}
}

// admitOf returns h's Inspect and Admit as one Admit: Inspect first.
func admitOf(h Hooks) func(*View) *Answer {
	switch {
	case h.Inspect == nil:
		return h.Admit
	case h.Admit == nil:
		f := h.Inspect
		return func(v *View) *Answer { return f(v.Request()) }
	}
	f, g := h.Inspect, h.Admit
	return func(v *View) *Answer {
		if a := f(v.Request()); a != nil {
			return a
		}
		return g(v)
	}
}

// completeOf returns h's Observe and Complete as one Complete: Observe
// first. Observe may keep the Response, so it gets its own copy.
func completeOf(h Hooks) func(*View, *Response) {
	var f func(*View, *Response)
	if h.Observe != nil {
		obs := h.Observe
		f = func(v *View, resp *Response) {
			r := *resp
			obs(v.Request(), &r)
		}
	}
	switch {
	case f == nil:
		return h.Complete
	case h.Complete == nil:
		return f
	}
	g := h.Complete
	return func(v *View, resp *Response) {
		f(v, resp)
		g(v, resp)
	}
}
