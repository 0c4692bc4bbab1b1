// Package livetest is a small supervisor for testing programs built on
// graft's live package without graft: it starts generations with inherited
// listeners, a notify socket and a control channel, and runs the upgrade,
// rollback and drain sequences of graft's generation protocol
// (api/control.go) step by step, so tests can also stop halfway.
package livetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/graftdev/graft/api"
)

const (
	envShim     = "LIVETEST_SHIM"
	envExec     = "LIVETEST_EXEC"
	envExecMark = "LIVETEST_EXEC_OTHER"
)

// Command returns a command that runs program bin with args as a
// generation, through the shim in the current binary (which must call
// MaybeShim).
func Command(bin string, args ...string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	cmd := exec.Command(self, append([]string{bin}, args...)...)
	cmd.Env = []string{envExecMark + "=1"}
	return cmd
}

// MaybeShim must be called first thing in TestMain (or main) of a program
// that livetest starts as a generation. Go's exec cannot know a child's pid
// before it runs, so the child re-executes itself once with LISTEN_PID set
// to its own pid (exec keeps the pid), as a real supervisor's shim does.
//
// With Command, the program calling MaybeShim is only the shim, and it
// executes another program (for example a built example server).
func MaybeShim() {
	mode := os.Getenv(envShim)
	if mode == "" {
		return
	}
	os.Unsetenv(envShim)
	os.Unsetenv(envExec)
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	exe, args := "", os.Args
	if os.Getenv(envExecMark) == "1" && len(os.Args) > 1 {
		os.Unsetenv(envExecMark)
		exe, args = os.Args[1], os.Args[1:]
	} else {
		var err error
		if exe, err = os.Executable(); err != nil {
			fmt.Fprintln(os.Stderr, "livetest shim:", err)
			os.Exit(111)
		}
	}
	err := syscall.Exec(exe, args, os.Environ())
	fmt.Fprintln(os.Stderr, "livetest shim: exec:", err)
	os.Exit(111)
}

// Listener is a named listening socket the supervisor owns.
type Listener struct {
	Name string
	File *os.File
}

// Supervisor starts generations. Its zero value is not usable; use New.
type Supervisor struct {
	dir       string
	listeners []Listener
	next      int
	// StartTimeout bounds the wait for readiness; 0 means 30s.
	StartTimeout time.Duration
}

// New returns a supervisor that passes the given listeners to each
// generation and keeps its sockets in dir.
func New(dir string, listeners ...Listener) *Supervisor {
	return &Supervisor{dir: dir, listeners: listeners, next: 1}
}

// Listen binds a TCP listener on 127.0.0.1 for the supervisor to own and
// returns it with its address.
func Listen(name string) (Listener, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Listener{}, "", err
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return Listener{}, "", err
	}
	return Listener{Name: name, File: f}, ln.Addr().String(), nil
}

// Generation is one started child.
type Generation struct {
	N     int
	Cmd   *exec.Cmd
	Hello api.Control

	ctl    *net.UnixConn
	notify *net.UnixConn
	msgs   chan api.Control
	ready  chan struct{}
	exited chan struct{}
	err    error
	wg     sync.WaitGroup
}

// Start starts cmd as the next generation, handing it state (the read end
// of a state stream) when state is not nil, and returns without waiting
// for readiness (see WaitReady).
func (s *Supervisor) Start(cmd *exec.Cmd, state *os.File) (*Generation, error) {
	n := s.next
	s.next++
	g := &Generation{N: n, Cmd: cmd, msgs: make(chan api.Control, 16), ready: make(chan struct{}), exited: make(chan struct{})}

	path := filepath.Join(s.dir, fmt.Sprintf("notify-%d", n))
	os.Remove(path)
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("start generation %d: notify socket: %w", n, err)
	}
	g.notify = nc
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("start generation %d: control socketpair: %w", n, err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "control"), os.NewFile(uintptr(fds[1]), "control-child")
	defer theirs.Close()
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("start generation %d: control conn: %w", n, err)
	}
	g.ctl = c.(*net.UnixConn)

	var names []string
	for _, l := range s.listeners {
		cmd.ExtraFiles = append(cmd.ExtraFiles, l.File)
		names = append(names, l.Name)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, theirs)
	env := append(os.Environ(),
		envShim+"=1",
		"GRAFT_GENERATION="+strconv.Itoa(n),
		"NOTIFY_SOCKET="+path,
		"GRAFT_CONTROL_FD="+strconv.Itoa(2+len(cmd.ExtraFiles)),
	)
	if len(s.listeners) > 0 {
		env = append(env, "LISTEN_FDS="+strconv.Itoa(len(s.listeners)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	}
	if state != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, state)
		env = append(env, "GRAFT_STATE_FD="+strconv.Itoa(2+len(cmd.ExtraFiles)))
	}
	cmd.Env = append(env, cmd.Env...)
	if err := cmd.Start(); err != nil {
		g.ctl.Close()
		nc.Close()
		return nil, fmt.Errorf("start generation %d: %w", n, err)
	}
	// exec passed the listeners with Fd(), which switches the shared
	// socket to blocking mode for every process holding it; a generation
	// blocked in accept(2) could then not stop accepting. Switch it back.
	for _, l := range s.listeners {
		if rc, err := l.File.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { syscall.SetNonblock(int(fd), true) })
		}
	}
	g.wg.Go(g.readControl)
	g.wg.Go(g.readNotify)
	go func() {
		g.err = cmd.Wait()
		close(g.exited)
		g.ctl.Close()
		g.notify.Close()
		g.wg.Wait()
	}()
	return g, nil
}

func (g *Generation) readControl() {
	buf := make([]byte, 64<<10)
	for {
		n, _, _, _, err := g.ctl.ReadMsgUnix(buf, nil)
		if err != nil || n == 0 {
			close(g.msgs)
			return
		}
		var m api.Control
		if json.Unmarshal(buf[:n], &m) == nil {
			g.msgs <- m
		}
	}
}

func (g *Generation) readNotify() {
	buf := make([]byte, 4096)
	once := sync.Once{}
	for {
		n, err := g.notify.Read(buf)
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if line == "READY=1" {
				once.Do(func() { close(g.ready) })
			}
		}
	}
}

// Exited is closed when the process has exited.
func (g *Generation) Exited() <-chan struct{} { return g.exited }

// Err is the process's exit error, valid after Exited.
func (g *Generation) Err() error { return g.err }

// Send sends a control message with an optional fd.
func (g *Generation) Send(m api.Control, f *os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if f != nil {
		oob = syscall.UnixRights(int(f.Fd()))
	}
	_, _, err = g.ctl.WriteMsgUnix(b, oob, nil)
	return err
}

// Next returns the next control message from the generation.
func (g *Generation) Next(ctx context.Context) (api.Control, error) {
	select {
	case m, ok := <-g.msgs:
		if !ok {
			return api.Control{}, fmt.Errorf("generation %d: control channel closed", g.N)
		}
		return m, nil
	case <-ctx.Done():
		return api.Control{}, ctx.Err()
	}
}

// Expect waits for a message of type typ, failing on an "error" message,
// exit, or ctx.
func (g *Generation) Expect(ctx context.Context, typ string) (api.Control, error) {
	for {
		m, err := g.Next(ctx)
		if err != nil {
			return m, err
		}
		switch m.Type {
		case typ:
			return m, nil
		case api.CtlError:
			return m, fmt.Errorf("generation %d: %s", g.N, m.Error)
		}
	}
}

// WaitReady waits for hello and READY=1, or fails when the generation
// reports an error or exits first.
func (g *Generation) WaitReady(ctx context.Context) error {
	hello, err := g.Expect(ctx, api.CtlHello)
	if err != nil {
		return g.why(err)
	}
	g.Hello = hello
	select {
	case <-g.ready:
		return nil
	case <-g.exited:
		return fmt.Errorf("generation %d exited before ready: %v", g.N, g.err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Generation) why(err error) error {
	select {
	case <-g.exited:
		return fmt.Errorf("%w (exit: %v)", err, g.err)
	default:
		return err
	}
}

// Kill kills the process and waits for it.
func (g *Generation) Kill() {
	g.Cmd.Process.Kill()
	<-g.exited
}

// Drain asks the generation to drain within d and waits for it to exit.
func (g *Generation) Drain(ctx context.Context, d time.Duration) error {
	if err := g.Send(api.Control{Type: api.CtlDrain, DeadlineMS: d.Milliseconds()}, nil); err != nil {
		return err
	}
	select {
	case <-g.exited:
		return g.err
	case <-ctx.Done():
		g.Kill()
		return ctx.Err()
	}
}

// StartFirst starts the first generation and waits until it is ready.
func (s *Supervisor) StartFirst(ctx context.Context, cmd *exec.Cmd) (*Generation, error) {
	g, err := s.Start(cmd, nil)
	if err != nil {
		return nil, err
	}
	sctx, cancel := s.startCtx(ctx)
	defer cancel()
	if err := g.WaitReady(sctx); err != nil {
		g.Kill()
		return nil, err
	}
	return g, nil
}

func (s *Supervisor) startCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.StartTimeout
	if d <= 0 {
		d = 30 * time.Second
	}
	return context.WithTimeout(ctx, d)
}

// Timing of one upgrade.
type Timing struct {
	Pause time.Duration // handoff sent to the old generation → handoff-sent
	Total time.Duration // upgrade started → new generation ready
	Bytes int64
}

// ErrRolledBack wraps the reason an upgrade failed; the old generation was
// resumed.
var ErrRolledBack = errors.New("upgrade rolled back")

// Upgrade replaces old with a generation running cmd, handing the state
// over as graft does: stream socketpair, handoff to old, new generation
// reads it before ready, then commit to old (which stays parked; the
// caller drains it). On failure the new generation is killed and old is
// resumed.
func (s *Supervisor) Upgrade(ctx context.Context, old *Generation, cmd *exec.Cmd) (*Generation, Timing, error) {
	var t Timing
	start := time.Now()
	r, w, err := streamPair()
	if err != nil {
		return nil, t, err
	}
	ng, err := s.Start(cmd, r)
	r.Close()
	if err != nil {
		w.Close()
		return nil, t, err
	}
	fail := func(err error) (*Generation, Timing, error) {
		ng.Kill()
		if rerr := old.Send(api.Control{Type: api.CtlResume}, nil); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, t, fmt.Errorf("%w: %w", ErrRolledBack, err)
	}
	hs := time.Now()
	err = old.Send(api.Control{Type: api.CtlHandoff}, w)
	w.Close()
	if err != nil {
		return fail(err)
	}
	sctx, cancel := s.startCtx(ctx)
	defer cancel()
	sent, err := old.Expect(sctx, api.CtlHandoffSent)
	if err != nil {
		return fail(fmt.Errorf("handoff: %w", err))
	}
	t.Pause, t.Bytes = time.Since(hs), sent.Bytes
	if err := ng.WaitReady(sctx); err != nil {
		return fail(err)
	}
	t.Total = time.Since(start)
	if err := old.Send(api.Control{Type: api.CtlCommit}, nil); err != nil {
		return ng, t, err
	}
	// Once old says parked it forwards whatever reaches it to ng.
	if _, err := old.Expect(sctx, api.CtlParked); err != nil {
		return ng, t, fmt.Errorf("commit: %w", err)
	}
	return ng, t, nil
}

// Rollback gives the state of cur back to parked (a generation that handed
// off and was committed) and makes parked serve again; cur is then drained.
func (s *Supervisor) Rollback(ctx context.Context, parked, cur *Generation, drain time.Duration) error {
	r, w, err := streamPair()
	if err != nil {
		return err
	}
	// Both ends at once, as graft does: the writer streams once the reader
	// has started.
	err = cur.Send(api.Control{Type: api.CtlHandoff}, w)
	w.Close()
	if err == nil {
		err = parked.Send(api.Control{Type: api.CtlReceive}, r)
	}
	r.Close()
	if err != nil {
		return err
	}
	sctx, cancel := s.startCtx(ctx)
	defer cancel()
	if _, err := cur.Expect(sctx, api.CtlHandoffSent); err != nil {
		return fmt.Errorf("rollback handoff: %w", err)
	}
	return cur.Drain(ctx, drain)
}

// streamPair is the private channel the state travels on.
func streamPair() (r, w *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("state socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "state-r"), os.NewFile(uintptr(fds[1]), "state-w"), nil
}
