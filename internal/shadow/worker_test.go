package shadow

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/idle"
	"github.com/graftdev/graft/internal/shadow/differ"
)

// The worker process runs every thread at the priority asked for, like a
// lane: SCHED_IDLE (nice 19 where refused), or normal.
func TestWorkerPriority(t *testing.T) {
	lane := httptest.NewServer(&service{})
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
			w := testWorker()
			w.Priority = prio
			c, _ := NewController(Options{Worker: w}, addr(lane), addr(lane))
			errc := make(chan error, 1)
			go func() { errc <- c.Run(t.Context()) }()
			defer func() {
				c.Stop()
				if err := <-errc; err != nil {
					t.Error(err)
				}
			}()
			// The worker answers once it runs: then its runtime's threads exist.
			c.Observe(&Request{Gen: 1, Method: "GET", Path: "/users/1"}, &differ.Answer{Status: 200})
			awaitOutcome(c)
			pid := c.workerPid.Load()
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

// A worker process that dies ends the run, and the report says why; the
// comparisons made before stand.
func TestControllerWorkerDies(t *testing.T) {
	primary := httptest.NewServer(&service{})
	defer primary.Close()
	lane := httptest.NewServer(&service{})
	defer lane.Close()
	c, _ := NewController(Options{Worker: testWorker()}, addr(lane), addr(lane))
	errc := make(chan error, 1)
	go func() { errc <- c.Run(t.Context()) }()
	req, ans := fetch(t, &http.Client{}, primary.URL, "GET", "/users/1")
	c.Observe(req, ans)
	awaitOutcome(c)
	if err := syscall.Kill(int(c.workerPid.Load()), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	r := c.Report()
	if r.Ended != "worker exited" || !strings.Contains(r.Reason, "shadow worker exited during the run") || !strings.Contains(r.Reason, "killed") ||
		r.Compared != 1 || r.Verdict != api.VerdictUndecided {
		t.Errorf("ended %q reason %q compared %d verdict %s; want the worker's death named, 1 compared, undecided", r.Ended, r.Reason, r.Compared, r.Verdict)
	}
}

// awaitOutcome polls until c has recorded an outcome. It sleeps rather than
// spins: a spinning test would keep an idle-priority worker off the CPU.
func awaitOutcome(c *Controller) {
	for c.compared.Load() == 0 && c.laneErrors.Load() == 0 {
		time.Sleep(time.Millisecond) // polling a counter; the worker is another process
	}
}
