// Package idle starts processes at the lowest CPU priority: under Linux's
// SCHED_IDLE policy, or at nice 19 where that is refused, and, where this
// process may create one, in a cpu cgroup that is idle as a whole. The
// shadow's lanes and its worker process start this way, so that mirroring
// only gets the CPU the service leaves.
package idle

import (
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
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

// Start starts a process at the lowest priority: start (which starts it and
// returns its pid) runs as Fork runs fork, and the process then goes into
// the idle cgroup where there is one (Join). Neither failing stops the
// start: the process runs at normal priority, and log (nil: none) says so,
// naming the process as what.
func Start(log *slog.Logger, what string, start func() (pid int, err error)) (int, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var pid int
	var err error
	how, perr := Fork(func() { pid, err = start() })
	if perr != nil {
		log.Warn(what+" priority: left at normal", "err", perr)
	} else if how != "SCHED_IDLE" {
		log.Info(what+" priority: SCHED_IDLE refused", "using", how)
	}
	if err != nil {
		return pid, err
	}
	if _, jerr := Join(pid); jerr != nil {
		log.Debug(what+" priority: no idle cgroup", "err", jerr)
	}
	return pid, nil
}
