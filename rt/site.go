package rt

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Site kinds.
const (
	KindMake   = "make"   // make with a non-constant length or capacity
	KindIndex  = "index"  // index with a non-constant index (recover site)
	KindSlice  = "slice"  // slice expression with non-constant bounds (recover site)
	KindDiv    = "div"    // integer division or modulo by a non-constant (recover site)
	KindAssert = "assert" // single-value type assertion (recover site)
	KindDepth  = "depth"  // recursion depth of a recursive function
	KindLoop   = "loop"   // iterations of one execution of a for loop without a post statement
	KindNil    = "nil"    // nil pointer dereference or nil map write anywhere in the function (recover site)
)

// Default limits of sites switched on without one.
const (
	DefaultMakeLimit  = 1 << 24 // elements
	DefaultDepthLimit = 5000    // nested calls of one recursive function on one goroutine
	DefaultLoopBudget = 100_000_000
)

// Site is one latent check site. The zero value is off; generated code
// declares one package-level Site per site and registers it.
type Site struct {
	// on is 1 while the site is on: written with atomic.StoreUint32
	// under mu, read with isOn (atomically) or, in the inlined checks of
	// generated code, with hot (see hot_norace.go).
	on    uint32
	limit atomic.Int64
	info  *SiteInfo
	point *Point
	calls atomic.Int64 // Depth's call count while on
}

// SiteInfo describes a site.
type SiteInfo struct {
	ID      string // Point + ":" + kind + ":" + hash of the site's path in the function's syntax tree
	Kind    string
	Point   string // id of the enclosing function's point
	Package string
	Func    string
	File    string
	Line    int
}

var (
	sites     = map[string]*Site{}
	byLine    = map[lineKey][]*Site{} // recover sites by file:line
	byFunc    = map[string][]*Site{}  // nil sites by function id
	envSites  = map[string]int64{}    // GRAFT_SITES ids not registered yet → limit
	siteStops atomic.Int64
)

// RegisterSite records s, which lives in the function of point p. A site
// named in GRAFT_SITES starts on.
func RegisterSite(s *Site, p *Point, info SiteInfo) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := sites[info.ID]; dup {
		return
	}
	inf := info
	s.info = &inf
	s.point = p
	sites[info.ID] = s
	switch info.Kind {
	case KindIndex, KindSlice, KindDiv, KindAssert:
		k := keyOf(info.File, info.Line)
		byLine[k] = append(byLine[k], s)
	case KindNil:
		if fn, _, ok := strings.Cut(info.ID, ":"+KindNil+":"); ok {
			byFunc[fn] = append(byFunc[fn], s)
		}
	}
	if lim, ok := envSites[info.ID]; ok {
		delete(envSites, info.ID)
		setSiteLocked(s, true, lim)
	}
}

// ErrNoSite is returned for an id that names no registered site.
var ErrNoSite = errors.New("no such check site")

// SetSite switches the site id on or off; limit (when > 0) replaces the
// kind's default limit.
func SetSite(id string, on bool, limit int64) error {
	mu.Lock()
	defer mu.Unlock()
	s, ok := sites[id]
	if !ok {
		return fmt.Errorf("switch %s: %w", id, ErrNoSite)
	}
	setSiteLocked(s, on, limit)
	return nil
}

func setSiteLocked(s *Site, on bool, limit int64) {
	if limit > 0 {
		s.limit.Store(limit)
	}
	if s.isOn() == on {
		return
	}
	var v uint32
	if on {
		v = 1
	}
	atomic.StoreUint32(&s.on, v)
	d := -1
	if on {
		d = 1
	}
	if s.point != nil {
		s.point.sitesOn += d
	}
	addArmedLocked(d) // refreshes every word when crossing zero
	if s.point != nil {
		s.point.store()
	}
}

// SiteState is one site as Sites reports it.
type SiteState struct {
	SiteInfo
	On    bool
	Limit int64 // 0: the kind's default
}

// AllSites lists every registered site, sorted by id.
func AllSites() []SiteState {
	mu.Lock()
	defer mu.Unlock()
	out := make([]SiteState, 0, len(sites))
	for _, s := range sites {
		out = append(out, SiteState{SiteInfo: *s.info, On: s.isOn(), Limit: s.limit.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *Site) isOn() bool { return atomic.LoadUint32(&s.on) != 0 }

func (s *Site) lim(def int64) int64 {
	if l := s.limit.Load(); l > 0 {
		return l
	}
	return def
}

func (s *Site) stop(format string, args ...any) {
	siteStops.Add(1)
	id, kind := "?", "?"
	if s.info != nil {
		id, kind = s.info.ID, s.info.Kind
	}
	panic(&Error{Kind: kind, ID: id, Detail: fmt.Sprintf(format, args...)})
}

// The check functions below are what generated code wraps around operands.
// Each is small enough to inline and tests the site's own switch: one load
// and a branch while off. They do not use the function's word, so the word
// is not kept live (spilled) across the function's calls.

// LenOn checks a make length or capacity: 0 ≤ n ≤ limit.
func LenOn(s *Site, n int64) int {
	if s.hot() {
		s.checkLen(n)
	}
	return int(n)
}

// Kept out of line so the wrapper above stays inlinable.
//
//go:noinline
func (s *Site) checkLen(n int64) {
	if lim := s.lim(DefaultMakeLimit); n < 0 || n > lim {
		s.stop("make size %d outside [0,%d]", n, lim)
	}
}

// LoopOn counts one iteration of a loop execution in *c while s is on. The
// switch is read on every iteration, so a loop already running when the
// site is switched on is stopped too (its count starts then).
func LoopOn(s *Site, c *int) {
	if s.hot() {
		s.loop(c)
	}
}

// Kept out of line so the wrapper above stays inlinable.
//
//go:noinline
func (s *Site) loop(c *int) {
	*c++
	if lim := s.lim(DefaultLoopBudget); int64(*c) > lim {
		s.stop("loop ran more than %d iterations", lim)
	}
}

// Depth checks the recursion depth of the function of depth site s on the
// calling goroutine: generated code calls it at entry while the function's
// word has the Sites bit. It needs no matching call on return (a defer
// would cost every call of a recursive function, dormant or not): it counts
// the frames of the calling function on the stack. That walk costs O(stack
// depth), so under a deep recursion only every depthStep-th call of the
// site walks, and the recursion may overshoot the limit by that many calls
// before it stops.
//
// Kept out of line: it runs only while a site of the function is on.
//
//go:noinline
func Depth(s *Site) {
	if !s.isOn() {
		return
	}
	lim := s.lim(DefaultDepthLimit)
	if step := int64(depthStep); lim >= 4*depthStep && s.calls.Add(1)%step != 0 {
		return
	}
	// Frames of other functions may sit between the recursive calls;
	// walk at most 4 frames per allowed level, plus slack.
	max := 4*lim + 64
	if max > 1<<20 {
		max = 1 << 20
	}
	bp := pcPool.Get().(*[]uintptr)
	defer pcPool.Put(bp)
	if int64(cap(*bp)) < max {
		*bp = make([]uintptr, max)
	}
	pcs := (*bp)[:max]
	n := runtime.Callers(2, pcs) // pcs[0]: the instrumented function
	if n == 0 {
		return
	}
	self := runtime.FuncForPC(pcs[0] - 1)
	if self == nil {
		return
	}
	entry := self.Entry()
	var d int64
	for _, pc := range pcs[:n] {
		if f := runtime.FuncForPC(pc - 1); f != nil && f.Entry() == entry {
			d++
		}
	}
	if d > lim {
		s.stop("recursion deeper than %d", lim)
	}
}

// depthStep: under a deep recursion, Depth walks the stack on every
// depthStep-th call of a site (every call when the limit is small).
const depthStep = 16

var pcPool = sync.Pool{New: func() any { return new([]uintptr) }}
