package heal

import (
	"net/http"
	"sync"
	"time"

	"github.com/graftdev/graft/internal/heal/rule"
)

// tracker keeps the requests that have been let through and not yet seen
// completing, so that a crash can be attributed even when the proxy has
// already dropped the dead generation's requests from its in-flight list
// (it does so as soon as their connections break, which races with the
// supervisor noticing the exit).
type tracker struct {
	mu     sync.Mutex
	m      map[uint64]tracked // by value: begin allocates nothing once the map has grown
	maxAge time.Duration
}

type tracked struct {
	l          *profileLazy // kept as benign evidence if it completes
	start      time.Time
	attributed int // crashes this request was already a suspect of
}

// blamed reports whether request id was a suspect of an earlier crash.
func (t *tracker) blamed(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[id]
	return ok && e.attributed > 1
}

func newTracker(maxAge time.Duration) *tracker {
	return &tracker{m: map[uint64]tracked{}, maxAge: maxAge}
}

func (t *tracker) begin(l *profileLazy, now time.Time) {
	t.mu.Lock()
	if _, ok := t.m[l.in.ID]; !ok {
		t.m[l.in.ID] = tracked{l: l, start: now}
	}
	if len(t.m) > 4096 && len(t.m)%1024 == 0 {
		t.evictLocked(now)
	}
	t.mu.Unlock()
}

// end forgets request id and returns what begin recorded for it (nil when
// it was not tracked).
func (t *tracker) end(id uint64) *profileLazy {
	t.mu.Lock()
	e, ok := t.m[id]
	if ok {
		delete(t.m, id)
	}
	t.mu.Unlock()
	return e.l
}

func (t *tracker) evictLocked(now time.Time) {
	for id, e := range t.m {
		if now.Sub(e.start) > t.maxAge {
			delete(t.m, id)
		}
	}
}

// suspects returns the unfinished requests that may have been in flight at
// a crash at now, and marks them. A non-idempotent request already blamed
// for an earlier crash failed for good there (it is never retried), so it
// is dropped rather than blamed again; an idempotent one may have been
// retried once into the next generation, so it is blamed at most twice.
func (t *tracker) suspects(now time.Time) []*rule.Input {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.evictLocked(now)
	var out []*rule.Input
	for id, e := range t.m {
		if e.start.After(now) {
			continue
		}
		if e.attributed > 0 && (!idempotent(e.l.in.Method) || e.attributed >= 2) {
			delete(t.m, id)
			continue
		}
		e.attributed++
		t.m[id] = e
		out = append(out, e.l.in)
	}
	return out
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func (t *tracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
