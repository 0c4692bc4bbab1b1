package idle

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// threadSched reads the calling thread's scheduling policy and nice value.
func threadSched() (policy, nice int, err error) {
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	nice, _ = strconv.Atoi(f[19-3])
	policy, _ = strconv.Atoi(f[41-3])
	return policy, nice, nil
}

// Fork calls its function on a thread whose priority is already lowered,
// as Fork says, and the calling thread keeps its own.
func TestFork(t *testing.T) {
	var policy, nice int
	var rerr error
	how, err := Fork(func() { policy, nice, rerr = threadSched() })
	switch {
	case rerr != nil:
		t.Fatal(rerr)
	case err != nil:
		t.Skipf("this machine refuses both SCHED_IDLE and nice 19: %v", err)
	case how == "SCHED_IDLE" && policy != SchedIdle:
		t.Errorf("Fork said %s, the thread had policy %d", how, policy)
	case how == "nice 19" && nice != 19:
		t.Errorf("Fork said %s, the thread had nice %d", how, nice)
	case how != "SCHED_IDLE" && how != "nice 19":
		t.Errorf("Fork said %q", how)
	}
	if p, n, err := threadSched(); err != nil || p == SchedIdle || n == 19 {
		t.Errorf("the caller's thread: policy %d nice %d (%v), want it left alone", p, n, err)
	}
}

// Where the idle cgroup can be made, Join moves a process into it.
func TestJoin(t *testing.T) {
	dir, err := Group()
	if dir == "" {
		t.Skipf("no idle cgroup here: %v", err)
	}
	if b, err := os.ReadFile(dir + "/cpu.idle"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("%s/cpu.idle: %q %v", dir, b, err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if ok, err := Join(cmd.Process.Pid); !ok || err != nil {
		t.Fatalf("Join: %v %v", ok, err)
	}
	cg, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cgroup")
	if !strings.Contains(string(cg), "/"+GroupName+"\n") {
		t.Errorf("the process's cgroups after Join: %q", cg)
	}
}
