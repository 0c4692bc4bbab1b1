// Package idle starts processes at the lowest CPU priority: under Linux's
// SCHED_IDLE policy, or at nice 19 where that is refused. The shadow's
// lanes and its worker process start this way, so that mirroring only gets
// the CPU the service leaves.
package idle

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// SchedIdle is Linux's SCHED_IDLE policy (sched.h).
const SchedIdle = 5

// Fork calls fork, which should start a process (syscall.ForkExec,
// exec.Cmd.Start), on an OS thread of its own whose priority was lowered
// first, and returns how it was lowered ("SCHED_IDLE" or "nice 19") or why
// it could not be (fork is called anyway, at normal priority).
//
// Linux keeps the scheduling policy and the nice value per thread; clone
// copies them from the thread that calls it, and execve keeps them. So the
// forking thread lowers its own priority first: the child's first thread
// starts with it, before the program runs a single instruction, and every
// thread the program creates later inherits it. Setting the policy on the
// pid after the start would miss the threads a runtime creates at once (Go,
// the JVM). The goroutine stays locked to its thread and returns without
// unlocking, so the runtime ends that thread rather than run other
// goroutines at idle priority on it. (For the same reason a child must not
// rely on Pdeathsig: it fires when this thread ends, at once.)
func Fork(fork func()) (how string, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: see above
		how, err = Lower()
		fork()
	}()
	<-done
	return how, err
}

// Lower puts the calling thread under SCHED_IDLE, or at nice 19 where that
// is refused, and says which. The caller must be locked to its thread
// (runtime.LockOSThread) and should never unlock it.
func Lower() (string, error) {
	var param struct{ priority int32 } // struct sched_param
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, SchedIdle, uintptr(unsafe.Pointer(&param)))
	if e == 0 {
		return "SCHED_IDLE", nil
	}
	// who = this thread's id: on Linux the nice value is per thread.
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19); err != nil {
		return "", fmt.Errorf("sched_setscheduler SCHED_IDLE: %w; setpriority 19: %w", e, err)
	}
	return "nice 19", nil
}

// Autogroup lowers the CPU weight of the session pid leads, which must
// have been started with its own session (syscall.SysProcAttr.Setsid), to
// nice 19's. Where the kernel groups tasks by session for fairness
// (CONFIG_SCHED_AUTOGROUP, tasks in the root cpu cgroup), what an idle
// process runs is charged to its session's group: left in the service's
// session, the lanes would spend the service's share of the machine
// against other sessions while the service is momentarily blocked, and
// the service would then wait for its next turn. In a session of its own
// at nice 19 the process weighs 15 against a session's 1024. Where there
// are no autogroups the file does not exist and nothing changes.
func Autogroup(pid int) error {
	p := fmt.Sprintf("/proc/%d/autogroup", pid)
	if _, err := os.Stat(p); err != nil {
		return nil
	}
	var err error
	for range 3 {
		// Unprivileged writes are limited to one every 100 ms, machine-wide.
		if err = os.WriteFile(p, []byte("19"), 0); !errors.Is(err, syscall.EAGAIN) {
			break
		}
		time.Sleep(110 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("lower autogroup of %d: %w", pid, err)
	}
	return nil
}
