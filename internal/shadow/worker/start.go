package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/graftdev/graft/internal/idle"
)

// The CPU priorities a worker process runs at (Command.Priority): those of
// the lanes it asks (api.ShadowRequest.LanePriority).
const (
	PriorityIdle   = "idle"
	PriorityNormal = "normal"
)

// Command is how graft starts its worker process: a program that runs
// Serve on the socket it is handed as file descriptor 3, with Env set
// (graft's own binary, command Arg: see Self).
type Command struct {
	Path string
	Args []string // after the program name
	// Env is added to this process's environment.
	Env []string
	// Priority is the worker's CPU priority: PriorityIdle (SCHED_IDLE, or
	// nice 19 where that is refused) or PriorityNormal. "": a
	// shadow.Service runs it at its lanes' priority, Start at idle.
	Priority string
	// Stderr receives the worker's own error output; nil: discarded.
	Stderr io.Writer
}

// Self is the worker command that re-executes this process's own binary
// with the hidden command Arg, or nil when the binary's path is unknown
// (the comparisons then run in this process). The binary must dispatch Arg
// to Conn and Serve, as graft's does (a test binary's TestMain must do it
// too: see the e2e tests). A worker process never starts another.
func Self(getenv func(string) string) *Command {
	if getenv(Env) != "" {
		return nil
	}
	// /proc/self/exe is the running binary even when its file was replaced
	// since (an upgrade of graft itself): the worker speaks its protocol.
	exe := "/proc/self/exe"
	if _, err := os.Stat(exe); err != nil {
		if exe, err = os.Executable(); err != nil {
			return nil
		}
	}
	return &Command{Path: exe, Args: []string{Arg}, Stderr: os.Stderr}
}

// Handle is a running worker, process or goroutine.
type Handle struct {
	// Conn is graft's end of the socket: exchanges go out on it, outcomes
	// come back, and closing it tells the worker to stop.
	Conn net.Conn
	// Pid is the worker process's, 0 for a goroutine.
	Pid  int
	done chan struct{} // closed when the worker has exited
	err  error         // why it exited; set before done is closed
	kill func()
}

// Stop waits for the worker to exit after Conn was closed, and kills it
// after grace; it says whether it had to.
func (h *Handle) Stop(grace time.Duration) (killed bool) {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-h.done:
		return false
	case <-t.C:
	}
	h.kill()
	<-h.done
	return true
}

// Err says why the worker exited (nil: it returned cleanly); call it after
// Stop.
func (h *Handle) Err() error { return h.err }

// Start starts a worker configured by cfg, connected by a unix socket
// pair, and sends it cfg: a process as cmd says, or with a nil cmd a
// goroutine of this process (the same protocol, at this process's
// priority). log (nil: none) hears about the process's priority. The
// caller owns the worker: it closes Conn and calls Stop.
func Start(ctx context.Context, cfg Config, cmd *Command, log *slog.Logger) (*Handle, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start shadow worker: socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "shadow-worker"), os.NewFile(uintptr(fds[1]), "shadow-worker")
	defer theirs.Close() // the child has its copy; a goroutine worker its dup
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("start shadow worker: %w", err)
	}
	frame, err := appendConfig(nil, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start shadow worker: %w", err)
	}
	if _, err := conn.Write(frame); err != nil { // the socket's buffer holds it
		conn.Close()
		return nil, fmt.Errorf("start shadow worker: %w", err)
	}
	h := &Handle{Conn: conn, done: make(chan struct{})}
	if cmd == nil {
		wconn, err := net.FileConn(theirs)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("start shadow worker: %w", err)
		}
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		h.kill = cancel
		go func() { // owned by the caller, through Stop
			h.err = Serve(wctx, wconn)
			cancel()
			close(h.done)
		}()
		return h, nil
	}
	c := exec.Command(cmd.Path, cmd.Args...)
	c.Env = append(append(os.Environ(), fmt.Sprintf("%s=%d", Env, socketFD)), cmd.Env...)
	c.ExtraFiles = []*os.File{theirs} // descriptor 3 == socketFD
	c.Stderr = cmd.Stderr
	// Its own process group: a Ctrl-C meant for graft reaches graft, which
	// ends the run and then the worker.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cmd.Priority == PriorityNormal {
		err = c.Start()
	} else {
		_, err = idle.Start(log, "shadow worker", func() (int, error) {
			if err := c.Start(); err != nil {
				return 0, err
			}
			return c.Process.Pid, nil
		})
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start shadow worker: %w", err)
	}
	h.Pid = c.Process.Pid
	h.kill = func() { c.Process.Kill() }
	go func() { // owned by the caller, through Stop
		if err := c.Wait(); err != nil {
			h.err = fmt.Errorf("shadow worker %d: %w", c.Process.Pid, err)
		}
		close(h.done)
	}()
	return h, nil
}
