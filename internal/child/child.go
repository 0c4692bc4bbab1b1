// Package child starts and reaps one child process the way graft runs its
// generations and lanes: descriptors from 3 passed as raw numbers (never
// through *os.File, whose Fd would switch a shared listening socket to
// blocking mode), stdin from /dev/null, a process group of its own
// (signals reach what it started, and what it leaves behind is killed with
// it), and stdout and stderr read line by line, keeping the last 64 KiB of
// stderr for crash reports. It is apart from the supervisor because it is
// process plumbing, the same for every role; what the environment holds
// and what an exit means are the supervisor's.
package child

import (
	"bufio"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// Options describe the process to start.
type Options struct {
	Path  string    // resolved program path
	Argv  []string  // argv[0] included
	Env   []string  // the whole environment
	Files []uintptr // the child's descriptors 3, 4, ...
	// ForkExec starts the process; nil means syscall.ForkExec. Lanes pass
	// one that starts it at idle CPU priority.
	ForkExec func(path string, argv []string, attr *syscall.ProcAttr) (int, error)
	// Line gets each line of the process's output, stream "stdout" or
	// "stderr", from Run's goroutines (one per stream); nil drops them.
	Line func(stream string, line []byte)
}

// Process is a started child.
type Process struct {
	Pid        int
	proc       *os.Process
	outR, errR *os.File
	line       func(stream string, line []byte)
	stderr     tail
}

// Start starts the process in a new process group. Run must follow.
func Start(o Options) (*Process, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer outW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		return nil, err
	}
	defer errW.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	defer devnull.Close()
	forkExec := o.ForkExec
	if forkExec == nil {
		forkExec = syscall.ForkExec
	}
	pid, err := forkExec(o.Path, o.Argv, &syscall.ProcAttr{
		Env:   o.Env,
		Files: append([]uintptr{devnull.Fd(), outW.Fd(), errW.Fd()}, o.Files...),
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	proc, err := os.FindProcess(pid)
	if err != nil { // cannot happen on Unix
		return nil, err
	}
	return &Process{Pid: pid, proc: proc, outR: outR, errR: errR, line: o.Line}, nil
}

// Run reads the process's output until it has exited, then kills what it
// left behind in its process group (a stray child would keep accepting
// from a shared socket and hold the output pipes open) and returns once
// the output is read: the exit status as an error, nil for exit 0. Call it
// once.
func (p *Process) Run() error {
	var pipes sync.WaitGroup
	pipes.Go(func() { p.copyLines(p.outR, "stdout") })
	pipes.Go(func() { p.copyLines(p.errR, "stderr") })
	var err error
	if st, werr := p.proc.Wait(); werr != nil {
		err = werr
	} else if !st.Success() {
		err = errors.New(st.String())
	}
	syscall.Kill(-p.Pid, syscall.SIGKILL)
	piped := make(chan struct{})
	go func() { pipes.Wait(); close(piped) }()
	select {
	case <-piped:
	case <-time.After(2 * time.Second):
		// A process that left the group still holds the pipes.
		p.outR.Close()
		p.errR.Close()
		<-piped
	}
	return err
}

func (p *Process) copyLines(r *os.File, stream string) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if stream == "stderr" {
			p.stderr.write(line)
		}
		if p.line != nil {
			p.line(stream, line)
		}
	}
}

// Signal sends sig to the process group, so that shells and their
// children get it too.
func (p *Process) Signal(sig syscall.Signal) {
	if err := syscall.Kill(-p.Pid, sig); err != nil {
		p.proc.Signal(sig)
	}
}

// Stderr is the last 64 KiB the process wrote to stderr (panic traces).
func (p *Process) Stderr() []byte { return p.stderr.bytes() }

// tail keeps the last 64 KiB written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailCap = 64 << 10

func (t *tail) write(line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, line...)
	t.buf = append(t.buf, '\n')
	if len(t.buf) > tailCap {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-tailCap:]...)
	}
}

func (t *tail) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
