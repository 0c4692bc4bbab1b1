package supervisor

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/graftdev/graft/internal/listener"
)

// threadSched reads the scheduling policy and nice value of every thread
// of pid from /proc/PID/task/*/stat (fields 41 and 19).
func threadSched(t *testing.T, pid int) (policies, nices []int) {
	t.Helper()
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// Fields after the command, which is in parentheses and may hold
		// spaces: the 3rd field of stat is the first after ")".
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		nice, err1 := strconv.Atoi(f[19-3])
		policy, err2 := strconv.Atoi(f[41-3])
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %q", p, b)
		}
		policies, nices = append(policies, policy), append(nices, nice)
	}
	return policies, nices
}

// idleAllowed says whether this machine lets a thread take SCHED_IDLE (a
// seccomp profile may refuse it; lanes then run at nice 19).
func idleAllowed() bool {
	ch := make(chan bool)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		how, err := lowerThreadPriority()
		ch <- err == nil && how == "SCHED_IDLE"
	}()
	return <-ch
}

// A lane's every thread, including those its runtime started after exec,
// runs at the lowest priority by default; a normal lane and the serving
// generation do not.
func TestLanePriority(t *testing.T) {
	opts := Options{Proxy: true, Command: fix("-version", "1"), Output: io.Discard, Listen: []listener.Spec{{Name: "http", Addr: "127.0.0.1:0"}}}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	h := &harness{t: t, s: s, url: "http://" + s.Addrs()[0] + "/"}
	gen := h.waitServing(0)
	var servingPid int
	for _, g := range s.Status().Generations {
		if g.Number == gen {
			servingPid = g.PID
		}
	}
	idle := idleAllowed()
	t.Logf("SCHED_IDLE allowed here: %v", idle)

	for _, tc := range []struct {
		name string
		opts LaneOptions
		low  bool
	}{
		{"default", LaneOptions{}, true},
		{"idle", LaneOptions{Priority: PriorityIdle}, true},
		{"normal", LaneOptions{Priority: PriorityNormal}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lane, err := s.StartLaneWith(t.Context(), "candidate", fix("-version", "c"), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { lane.Stop(t.Context()); <-lane.Done() }()
			policies, nices := threadSched(t, lane.Pid())
			if len(policies) < 2 {
				t.Fatalf("lane has %d thread(s); the check needs the threads a Go runtime starts after exec", len(policies))
			}
			for i := range policies {
				switch {
				case !tc.low && (policies[i] != 0 || nices[i] != 0):
					t.Errorf("thread %d of a normal lane: policy %d nice %d, want 0 0", i, policies[i], nices[i])
				case tc.low && idle && policies[i] != schedIdle:
					t.Errorf("thread %d of the lane: policy %d, want SCHED_IDLE (%d)", i, policies[i], schedIdle)
				case tc.low && !idle && nices[i] != 19:
					t.Errorf("thread %d of the lane: nice %d, want 19", i, nices[i])
				}
			}
			t.Logf("%d threads: policies %v nices %v", len(policies), policies, nices)
		})
	}
	if servingPid == 0 {
		t.Fatal("no pid for the serving generation")
	}
	policies, nices := threadSched(t, servingPid)
	for i := range policies {
		if policies[i] != 0 || nices[i] != 0 {
			t.Errorf("thread %d of the serving generation: policy %d nice %d, want 0 0", i, policies[i], nices[i])
		}
	}
}
