package shadow

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/graftdev/graft/internal/idle"
	"github.com/graftdev/graft/internal/shadow/worker"
)

// WorkerCommand is how a Controller starts its worker process: a program
// that runs worker.Serve on the socket it is handed as file descriptor 3,
// with worker.Env set (graft's own binary, command worker.Arg).
type WorkerCommand struct {
	Path string
	Args []string // after the program name
	// Env is added to this process's environment.
	Env []string
	// Priority is the worker's CPU priority: PriorityIdle (SCHED_IDLE, or
	// nice 19 where that is refused) or PriorityNormal. "": a Service runs
	// it at its lanes' priority, a Controller at idle.
	Priority string
	// Stderr receives the worker's own error output; nil: discarded.
	Stderr io.Writer
}

// workerHandle is a running worker, process or goroutine.
type workerHandle struct {
	conn net.Conn      // graft's end of the socket
	done chan struct{} // closed when the worker has exited
	err  error         // why it exited; set before done is closed
	kill func()
}

// stop waits for the worker to exit after its socket was closed, and
// kills it after grace; it says whether it had to.
func (w *workerHandle) stop(grace time.Duration) (killed bool) {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-w.done:
		return false
	case <-t.C:
	}
	w.kill()
	<-w.done
	return true
}

// startWorker starts the worker (a process when opts.Worker says how, else
// a goroutine), connected by a unix socket pair, and sends it its
// configuration.
func (c *Controller) startWorker(ctx context.Context) (*workerHandle, error) {
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
	frame, err := worker.AppendConfig(nil, worker.Config{
		Candidate: c.candidate, Secondary: c.secondary, Timeout: c.opts.Timeout, BodyCap: c.opts.BodyCap,
		Workers: c.opts.Workers, InFlight: len(c.slots), Compare: c.opts.Differ.Compare, ExampleBody: c.differ.Options().ExampleBody,
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start shadow worker: %w", err)
	}
	if _, err := conn.Write(frame); err != nil { // the socket's buffer holds it
		conn.Close()
		return nil, fmt.Errorf("start shadow worker: %w", err)
	}
	w := &workerHandle{conn: conn, done: make(chan struct{})}
	if c.opts.Worker == nil {
		wconn, err := net.FileConn(theirs)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("start shadow worker: %w", err)
		}
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		w.kill = cancel
		go func() { // owned by Run, through stop
			w.err = worker.Serve(wctx, wconn)
			cancel()
			close(w.done)
		}()
		return w, nil
	}
	wc := c.opts.Worker
	cmd := exec.Command(wc.Path, wc.Args...)
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("%s=%d", worker.Env, worker.FD)), wc.Env...)
	cmd.ExtraFiles = []*os.File{theirs} // descriptor 3 == worker.FD
	cmd.Stderr = wc.Stderr
	// Its own process group: a Ctrl-C meant for graft reaches graft, which
	// ends the run and then the worker.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if wc.Priority == PriorityNormal {
		err = cmd.Start()
	} else {
		_, err = idle.Start(c.log, "shadow worker", func() (int, error) {
			if err := cmd.Start(); err != nil {
				return 0, err
			}
			return cmd.Process.Pid, nil
		})
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start shadow worker: %w", err)
	}
	c.workerPid.Store(int64(cmd.Process.Pid))
	w.kill = func() { cmd.Process.Kill() }
	go func() { // owned by Run, through stop
		if err := cmd.Wait(); err != nil {
			w.err = fmt.Errorf("shadow worker %d: %w", cmd.Process.Pid, err)
		}
		close(w.done)
	}()
	return w, nil
}

// The e2e tests' TestMain still names these; they go once it names package
// worker (another change edits that file's imports at the same time).
const WorkerEnv = worker.Env

func WorkerConn(getenv func(string) string) (net.Conn, error) { return worker.Conn(getenv) }

func ServeWorker(ctx context.Context, conn io.ReadWriteCloser) error { return worker.Serve(ctx, conn) }
