package heal

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/internal/proxy"
)

// tracker keeps the requests that have been let through and not yet seen
// completing, so that a crash can be attributed even when the proxy has
// already dropped the dead generation's requests from its in-flight list
// (it does so as soon as their connections break, which races with the
// supervisor noticing the exit).
//
// It is on every request's path, so begin and end take no lock and
// allocate nothing in the common case: a request sits in the slot of its id
// (the proxy's ids are sequential, so the slots hold the last len(slots)
// requests without colliding as long as they complete), and only a request
// whose slot is still held by an unfinished one goes to a locked overflow
// map. The crash path (suspects) takes the lock and scans every slot.
type tracker struct {
	slots  []slot
	maxAge int64 // nanoseconds

	nOver atomic.Int64 // len(over), read without the lock
	mu    sync.Mutex   // serializes the overflow map and crash analysis
	over  map[uint64]tracked
}

type slot struct {
	r       atomic.Pointer[proxy.Request]
	start   atomic.Int64 // unix nanoseconds of begin
	crashes atomic.Int32 // crashes r was a suspect of
}

type tracked struct {
	r       *proxy.Request
	start   int64
	crashes int32
}

// trackerSlots is the number of slots: requests begun after one still in
// flight before it needs the overflow map (a long poll among fast requests).
const trackerSlots = 8192

func newTracker(maxAge time.Duration) *tracker {
	return &tracker{
		slots:  make([]slot, trackerSlots),
		maxAge: int64(maxAge),
		over:   map[uint64]tracked{},
	}
}

func (t *tracker) slot(id uint64) *slot { return &t.slots[id%uint64(len(t.slots))] }

// begin tracks r from now (unix nanoseconds). A request shown again before
// a retry keeps its first start.
func (t *tracker) begin(r *proxy.Request, now int64) {
	if t.nOver.Load() > 0 && t.beginOver(r, now, false) {
		return
	}
	s := t.slot(r.ID)
	for {
		old := s.r.Load()
		switch {
		case old == nil:
			// The start is written before the slot is claimed, so that
			// whoever sees the request sees its start, not the last
			// occupant's.
			s.start.Store(now)
			s.crashes.Store(0)
			if s.r.CompareAndSwap(nil, r) {
				return
			}
			continue
		case old.ID == r.ID:
			return
		case now-s.start.Load() > t.maxAge:
			// A request that never completed (its client went away)
			// holds the slot no longer than the tracker remembers it.
			s.start.Store(now)
			s.crashes.Store(0)
			if s.r.CompareAndSwap(old, r) {
				return
			}
			continue
		}
		t.beginOver(r, now, true)
		return
	}
}

// beginOver tracks r in the overflow map: always when add is set, else only
// if it is there already (shown again); it reports whether r is there.
func (t *tracker) beginOver(r *proxy.Request, now int64, add bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.over[r.ID]; ok {
		return true
	}
	if !add {
		return false
	}
	t.over[r.ID] = tracked{r: r, start: now}
	t.nOver.Store(int64(len(t.over)))
	if len(t.over) > 4096 && len(t.over)%1024 == 0 {
		t.evictLocked(now)
	}
	return true
}

// end forgets request id and returns what begin recorded for it (nil when
// it was not tracked).
func (t *tracker) end(id uint64) *proxy.Request {
	var r *proxy.Request
	s := t.slot(id)
	if old := s.r.Load(); old != nil && old.ID == id && s.r.CompareAndSwap(old, nil) {
		r = old
	}
	if t.nOver.Load() == 0 {
		return r
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.over[id]; ok {
		delete(t.over, id)
		t.nOver.Store(int64(len(t.over)))
		r = e.r
	}
	return r
}

// blamed reports whether request id was a suspect of an earlier crash.
func (t *tracker) blamed(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.slot(id); s.r.Load() != nil && s.r.Load().ID == id {
		return s.crashes.Load() > 1
	}
	return t.over[id].crashes > 1
}

func (t *tracker) evictLocked(now int64) {
	for id, e := range t.over {
		if now-e.start > t.maxAge {
			delete(t.over, id)
		}
	}
	t.nOver.Store(int64(len(t.over)))
	for i := range t.slots {
		s := &t.slots[i]
		if old := s.r.Load(); old != nil && now-s.start.Load() > t.maxAge {
			s.r.CompareAndSwap(old, nil)
		}
	}
}

// suspects returns the unfinished requests that may have been in flight at
// a crash at now, and marks them. A non-idempotent request already blamed
// for an earlier crash failed for good there (it is never retried), so it
// is dropped rather than blamed again; an idempotent one may have been
// retried once into the next generation, so it is blamed at most twice.
func (t *tracker) suspects(now time.Time) []*proxy.Request {
	at := now.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.evictLocked(at)
	var out []*proxy.Request
	// suspect reports whether r, a suspect of crashes earlier crashes,
	// stays tracked, and lists it when it is a suspect of this one.
	suspect := func(r *proxy.Request, start int64, crashes int32) bool {
		if start > at {
			return true
		}
		if crashes > 0 && (!idempotent(r.Method) || crashes >= 2) {
			return false
		}
		out = append(out, r)
		return true
	}
	for i := range t.slots {
		s := &t.slots[i]
		r := s.r.Load()
		if r == nil {
			continue
		}
		start, crashes := s.start.Load(), s.crashes.Load()
		switch {
		case !suspect(r, start, crashes):
			s.r.CompareAndSwap(r, nil)
		case start <= at:
			s.crashes.Store(crashes + 1)
		}
	}
	for id, e := range t.over {
		switch {
		case !suspect(e.r, e.start, e.crashes):
			delete(t.over, id)
		case e.start <= at:
			e.crashes++
			t.over[id] = e
		}
	}
	t.nOver.Store(int64(len(t.over)))
	return out
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}
