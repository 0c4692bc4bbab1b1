package worker

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graftdev/graft/internal/idle"
	"github.com/graftdev/graft/internal/shadow/differ"
)

// The worker process runs every thread at the priority asked for, like a
// lane: SCHED_IDLE (nice 19 where refused), or normal.
func TestWorkerPriority(t *testing.T) {
	lane := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") }))
	defer lane.Close()
	ch := make(chan bool)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		how, err := idle.Lower()
		ch <- err == nil && how == "SCHED_IDLE"
	}()
	idleAllowed := <-ch
	for _, prio := range []string{PriorityIdle, PriorityNormal} {
		t.Run(prio, func(t *testing.T) {
			cfg := Config{Candidate: addr(lane), Secondary: addr(lane), Timeout: 10 * time.Second, BodyCap: 64 << 10, Workers: 1, InFlight: 1}
			h, err := Start(t.Context(), cfg, &Command{Path: os.Args[0], Stderr: os.Stderr, Priority: prio}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				h.Conn.Close()
				// A worker too slow to exit is killed; one that exits on
				// its own after the close exits cleanly.
				if killed := h.Stop(10 * time.Second); !killed && h.Err() != nil {
					t.Errorf("worker exited with %v", h.Err())
				}
			}()
			// The worker answers once it runs: then its runtime's threads exist.
			if _, err := h.Conn.Write(AppendExchange(nil, 0, &Request{Method: "GET", Path: "/users/1"}, &differ.Answer{Status: 200})); err != nil {
				t.Fatal(err)
			}
			if o, err := NewOutcomeReader(h.Conn).Next(); err != nil || o.Flags != 0 {
				t.Fatalf("outcome %+v, %v; want one compared", o, err)
			}
			pid := h.Pid
			if pid == 0 {
				t.Fatal("no worker process")
			}
			// Where this process may make the idle cgroup, the idle worker
			// is in it.
			if dir, _ := idle.Group(); dir != "" {
				cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
				in := strings.Contains(string(cg), "/"+idle.GroupName+"\n")
				if prio == PriorityIdle && !in || prio == PriorityNormal && in {
					t.Errorf("priority %s: worker's cgroups %q (idle cgroup %s)", prio, cg, dir)
				}
			}
			stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
			if len(stats) < 2 {
				t.Fatalf("worker %d has %d threads", pid, len(stats))
			}
			for _, p := range stats {
				b, err := os.ReadFile(p)
				if err != nil {
					continue // a thread that ended meanwhile
				}
				f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
				nice, _ := strconv.Atoi(f[19-3])
				policy, _ := strconv.Atoi(f[41-3])
				switch {
				case prio == PriorityNormal && (policy != 0 || nice != 0):
					t.Errorf("%s: policy %d nice %d, want normal", p, policy, nice)
				case prio == PriorityIdle && idleAllowed && policy != idle.SchedIdle:
					t.Errorf("%s: policy %d, want SCHED_IDLE", p, policy)
				case prio == PriorityIdle && !idleAllowed && nice != 19:
					t.Errorf("%s: nice %d, want 19", p, nice)
				}
			}
		})
	}
}

// Self re-runs this binary as the worker, except in a worker process.
func TestSelf(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"graft", map[string]string{}, true},
		{"a worker process", map[string]string{Env: "3"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := Self(func(k string) string { return tt.env[k] })
			if got := cmd != nil; got != tt.want {
				t.Fatalf("Self: %+v, want a command: %v", cmd, tt.want)
			}
			if cmd != nil && (cmd.Path == "" || len(cmd.Args) != 1 || cmd.Args[0] != Arg) {
				t.Errorf("Self: %+v, want this binary with %q", cmd, Arg)
			}
		})
	}
}
