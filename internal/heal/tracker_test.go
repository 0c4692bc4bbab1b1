package heal

import (
	"slices"
	"testing"
	"time"

	"github.com/graftdev/graft/internal/proxy"
)

func TestTracker(t *testing.T) {
	const maxAge = time.Minute
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	rq := func(id uint64, method string) *proxy.Request {
		return &proxy.Request{ID: id, Method: method, Path: "/x"}
	}
	ids := func(rs []*proxy.Request) []uint64 {
		var out []uint64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		run  func(t *testing.T, tr *tracker) []uint64 // returns the suspects of a crash
		want []uint64
	}{
		{"ended requests are no suspects", func(t *testing.T, tr *tracker) []uint64 {
			a, b := rq(1, "GET"), rq(2, "GET")
			tr.begin(a, at(0))
			tr.begin(b, at(0))
			if got := tr.end(1); got != a {
				t.Fatalf("end(1) = %v, want the request begun", got)
			}
			return ids(tr.suspects(t0.Add(time.Second)))
		}, []uint64{2}},
		{"colliding ids share nothing", func(t *testing.T, tr *tracker) []uint64 {
			a, b := rq(5, "GET"), rq(5+trackerSlots, "GET")
			tr.begin(a, at(0))
			tr.begin(b, at(0)) // a still holds the slot: overflow
			if tr.nOver.Load() != 1 {
				t.Fatalf("overflow holds %d, want 1", tr.nOver.Load())
			}
			s := ids(tr.suspects(t0.Add(time.Second)))
			if got := tr.end(b.ID); got != b {
				t.Fatalf("end(b) = %v", got)
			}
			if tr.nOver.Load() != 0 {
				t.Fatalf("overflow holds %d after end, want 0", tr.nOver.Load())
			}
			return s
		}, []uint64{5, 5 + trackerSlots}},
		{"shown again while in the overflow stays there", func(t *testing.T, tr *tracker) []uint64 {
			a, b := rq(7, "GET"), rq(7+trackerSlots, "GET")
			tr.begin(a, at(0))
			tr.begin(b, at(0))
			tr.end(a.ID)
			tr.begin(b, at(time.Second)) // a retry's re-check: its slot is free now
			tr.end(b.ID)
			return ids(tr.suspects(t0.Add(2 * time.Second)))
		}, nil},
		{"a request older than maxAge gives up its slot", func(t *testing.T, tr *tracker) []uint64 {
			tr.begin(rq(9, "GET"), at(0)) // never completes
			tr.begin(rq(9+trackerSlots, "GET"), at(2*maxAge))
			if tr.nOver.Load() != 0 {
				t.Fatalf("overflow used although the slot's request is stale")
			}
			return ids(tr.suspects(t0.Add(2*maxAge + time.Second)))
		}, []uint64{9 + trackerSlots}},
		{"requests begun after the crash are no suspects", func(t *testing.T, tr *tracker) []uint64 {
			tr.begin(rq(1, "GET"), at(0))
			tr.begin(rq(2, "GET"), at(2*time.Second))
			return ids(tr.suspects(t0.Add(time.Second)))
		}, []uint64{1}},
		{"blamed twice at most when idempotent, once otherwise", func(t *testing.T, tr *tracker) []uint64 {
			tr.begin(rq(1, "GET"), at(0))
			tr.begin(rq(2, "POST"), at(0))
			if got := ids(tr.suspects(t0.Add(time.Second))); !slices.Equal(got, []uint64{1, 2}) {
				t.Fatalf("first crash: %v", got)
			}
			if tr.blamed(1) {
				t.Fatalf("blamed after one crash")
			}
			if got := ids(tr.suspects(t0.Add(2 * time.Second))); !slices.Equal(got, []uint64{1}) {
				t.Fatalf("second crash: %v", got)
			}
			if !tr.blamed(1) {
				t.Fatalf("not blamed after two crashes")
			}
			return ids(tr.suspects(t0.Add(3 * time.Second)))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.run(t, newTracker(maxAge)); !slices.Equal(got, tt.want) {
				t.Fatalf("suspects = %v, want %v", got, tt.want)
			}
		})
	}
}
