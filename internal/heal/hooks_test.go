package heal

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/graftdev/graft/internal/guard"
	"github.com/graftdev/graft/internal/proxy"
)

// TestHooksConcurrent runs the proxy hooks from several goroutines, with
// ids that collide in the tracker's table and crash attributions in between,
// as the proxy and the supervisor do (run it with -race): every request
// that completed leaves the tracker, and the ones left unfinished are the
// next crash's suspects.
func TestHooksConcurrent(t *testing.T) {
	h, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := &Attached{Healer: h, Guards: guard.New(guard.Options{})}
	const workers, perWorker = 4, 3000
	var wg sync.WaitGroup
	unfinished := make([][]uint64, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				// Worker w uses ids w, w+workers·trackerSlots/4, ...: they
				// share slots, so the overflow map is used too.
				id := uint64(w) + uint64(i)*trackerSlots/4 + 1
				r := &proxy.Request{ID: id, Method: "GET", Path: fmt.Sprintf("/items/%d", i%50), Header: http.Header{"Accept": {"*/*"}}}
				if ans := a.Inspect(r); ans != nil {
					t.Errorf("request %d answered %d", id, ans.Status)
					return
				}
				if i%500 == 7 {
					unfinished[w] = append(unfinished[w], id) // its client went away
					continue
				}
				out := *r
				out.Gen = 1
				a.Observe(&out, &proxy.Response{Status: http.StatusOK})
			}
		})
	}
	wg.Go(func() {
		// The crash analysis' scans of the tracker (Crash itself would
		// install rules from these harmless requests), for a crash before
		// any of them began: nothing is blamed, so all stay tracked.
		for range 5 {
			h.flights.suspects(h.now().Add(-time.Hour))
		}
	})
	wg.Wait()
	want := map[uint64]bool{}
	for _, ids := range unfinished {
		for _, id := range ids {
			want[id] = true
		}
	}
	got := map[uint64]bool{}
	for _, r := range h.flights.suspects(h.now()) {
		got[r.ID] = true
		if !want[r.ID] {
			t.Errorf("request %d completed but is still tracked", r.ID)
		}
	}
	for id := range want {
		if !got[id] {
			t.Errorf("unfinished request %d is not tracked", id)
		}
	}
	if n := h.flights.nOver.Load(); n > int64(len(want)) {
		t.Errorf("overflow holds %d requests, only %d are unfinished", n, len(want))
	}
	if n := h.benign.len(); n != maxSampled {
		t.Errorf("benign sample holds %d, want %d", n, maxSampled)
	}
}
