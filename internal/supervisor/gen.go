package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/control"
	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/proxy"
	"github.com/graftdev/graft/internal/readiness"
)

// generation is one child process. Fields under "guarded by s.mu" change
// only with the supervisor's lock held.
type generation struct {
	n        int
	role     string // "" for the main line, else a lane's role
	cmd      []string
	addr     string // proxy mode: private address
	rtSocket string
	backend  *proxy.Backend
	proc     *os.Process
	started  time.Time

	// guarded by s.mu
	state   api.GenState
	ready   time.Time
	exited  time.Time
	exitErr error
	served  time.Time // when it last became serving
	// toldPark: it was sent park or commit and must hear resume (or
	// receive) before it serves again.
	toldPark bool

	done     chan struct{}           // closed once the process has been waited for
	notify   *readiness.NotifySocket // READY=1
	ctl      *control.Conn           // control channel, nil if it could not be made
	stopping atomic.Bool             // graft asked it to stop: its exit is no crash

	stderr tail
}

func (g *generation) drains() bool {
	h := g.ctl.Hello()
	return h != nil && h.Drains
}

func (g *generation) hasState() bool {
	h := g.ctl.Hello()
	return h != nil && h.Drains && len(h.State) > 0
}

func (g *generation) alive() bool {
	select {
	case <-g.done:
		return false
	default:
		return true
	}
}

// send writes one control message, with fd attached when not nil.
func (g *generation) send(m api.Control, fd *os.File) error {
	if g.ctl == nil {
		return errors.New("no control channel")
	}
	if err := g.ctl.Send(m, fd); err != nil {
		return fmt.Errorf("send %s to generation %d: %w", m.Type, g.n, err)
	}
	return nil
}

// signal sends sig to the generation's process group, so that shells and
// their children get it too.
func (g *generation) signal(sig syscall.Signal) {
	if g.proc == nil {
		return
	}
	if err := syscall.Kill(-g.proc.Pid, sig); err != nil {
		g.proc.Signal(sig)
	}
}

// shimArgv is how a socket-mode generation is started so that its
// LISTEN_PID is its own pid; tests replace it to try the /bin/sh shim.
var shimArgv = listener.ShimArgv

// startOpts are the parts of a start that vary per generation.
type startOpts struct {
	role  string
	cmd   []string
	state *os.File // read end of the state stream, or nil
	// lowPriority: a lane at the lowest CPU priority (lane.go).
	lowPriority bool
}

// start launches a generation; it does not wait for readiness.
func (s *Supervisor) start(so startOpts) (*generation, error) {
	if len(so.cmd) == 0 {
		return nil, errors.New("start generation: empty command")
	}
	s.mu.Lock()
	s.nextGen++
	n := s.nextGen
	addEnv := s.addEnv
	s.mu.Unlock()
	g := &generation{
		n: n, role: so.role, cmd: so.cmd,
		done:     make(chan struct{}),
		rtSocket: filepath.Join(s.runDir, fmt.Sprintf("rt-%d.sock", n)),
		state:    api.GenStarting,
	}
	// Resolved anew every time, so a binary replaced on disk is picked up
	// and a missing one fails here, before anything else happens.
	path, err := exec.LookPath(so.cmd[0])
	if err != nil {
		return nil, fmt.Errorf("start generation %d: %w", n, err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return nil, fmt.Errorf("start generation %d: %w", n, err)
	}
	args := so.cmd
	env := childEnv(s.env)
	env = append(env, "GRAFT_GENERATION="+strconv.Itoa(n), "GRAFT_RT_SOCKET="+g.rtSocket)
	var files []uintptr // fds 3.. of the child
	var closeAfter []io.Closer
	defer func() {
		for _, c := range closeAfter {
			c.Close()
		}
	}()
	if s.proxyMode {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("start generation %d: %w", n, err)
		}
		g.addr = "127.0.0.1:" + strconv.Itoa(port)
		args = substitute(args, port, g.addr)
		env = append(env, "PORT="+strconv.Itoa(port))
		g.backend = proxy.NewBackend(n, g.addr)
	} else if so.role == "" {
		fds, activation := listener.Activation(s.listeners)
		files = append(files, fds...)
		env = append(env, activation...)
	}
	// Notify socket: a private unixgram socket per generation.
	notify, err := readiness.ListenNotify(filepath.Join(s.runDir, fmt.Sprintf("notify-%d.sock", n)))
	if err != nil {
		return nil, fmt.Errorf("start generation %d: notify socket: %w", n, err)
	}
	g.notify = notify
	env = append(env, "NOTIFY_SOCKET="+notify.Path())
	// Control channel.
	if ctl, child, err := control.Pair(); err == nil {
		closeAfter = append(closeAfter, child)
		g.ctl = ctl
		env = append(env, "GRAFT_CONTROL_FD="+strconv.Itoa(3+len(files)))
		files = append(files, child.Fd())
	} else {
		s.log.Warn("control channel", "gen", n, "err", err)
	}
	if so.state != nil {
		env = append(env, "GRAFT_STATE_FD="+strconv.Itoa(3+len(files)))
		files = append(files, so.state.Fd())
	}
	for _, f := range addEnv {
		env = append(env, f(n)...)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		notify.Close()
		return nil, fmt.Errorf("start generation %d: %w", n, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		notify.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("start generation %d: %w", n, err)
	}
	closeAfter = append(closeAfter, outW, errW)
	argv := args
	if !s.proxyMode && so.role == "" {
		argv = shimArgv(path, args)
		path = argv[0]
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		notify.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start generation %d: %w", n, err)
	}
	closeAfter = append(closeAfter, devnull)
	// syscall.ForkExec rather than os/exec: os/exec takes *os.File and
	// calls Fd, which would put the shared listening sockets in blocking
	// mode (see internal/listener).
	fds := append([]uintptr{devnull.Fd(), outW.Fd(), errW.Fd()}, files...)
	forkExec := syscall.ForkExec
	if so.lowPriority {
		forkExec = s.forkExecLowPriority // lane.go
	}
	pid, err := forkExec(path, argv, &syscall.ProcAttr{
		Env:   env,
		Files: fds,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		notify.Close()
		outR.Close()
		errR.Close()
		if g.ctl != nil {
			g.ctl.Close()
		}
		return nil, fmt.Errorf("start generation %d: %w", n, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil { // cannot happen on Unix
		return nil, fmt.Errorf("start generation %d: %w", n, err)
	}
	g.proc = proc
	g.started = time.Now()
	s.mu.Lock()
	s.gens = append(s.gens, g)
	s.mu.Unlock()
	s.Event(n, "started", fmt.Sprintf("pid %d: %s", g.proc.Pid, strings.Join(so.cmd, " ")))
	s.metricStarts.Inc()

	var pipes sync.WaitGroup
	pipes.Go(func() { s.copyLines(g, outR, "stdout") })
	pipes.Go(func() { s.copyLines(g, errR, "stderr") })
	s.wg.Go(notify.Receive)
	if g.ctl != nil {
		s.wg.Go(func() { g.ctl.Receive(s.controlSeen(g)) })
	}
	s.wg.Go(func() {
		var err error
		if st, werr := proc.Wait(); werr != nil {
			err = werr
		} else if !st.Success() {
			err = errors.New(st.String())
		}
		// Whatever the generation left behind in its process group goes
		// with it: a stray child would keep accepting from the shared
		// socket and keep the output pipes open.
		syscall.Kill(-pid, syscall.SIGKILL)
		piped := make(chan struct{})
		go func() { pipes.Wait(); close(piped) }()
		select {
		case <-piped:
		case <-time.After(2 * time.Second):
			// A process that left the group still holds the pipes.
			outR.Close()
			errR.Close()
			<-piped
		}
		notify.Close()
		os.Remove(g.rtSocket) // if rt made one
		if g.ctl != nil {
			g.ctl.Close()
		}
		s.exited(g, err)
	})
	return g, nil
}

// childEnv is the supervisor's environment without what belongs to graft
// itself (its own socket activation, notify socket and graft variables).
func childEnv(base []string) []string {
	out := make([]string, 0, len(base)+8)
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "LISTEN_FDS", k == "LISTEN_PID", k == "LISTEN_FDNAMES", k == "NOTIFY_SOCKET", k == "PORT",
			strings.HasPrefix(k, "GRAFT_"):
			continue
		}
		out = append(out, kv)
	}
	return out
}

func substitute(args []string, port int, addr string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		a = strings.ReplaceAll(a, "{port}", strconv.Itoa(port))
		out[i] = strings.ReplaceAll(a, "{addr}", addr)
	}
	return out
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a private port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Supervisor) copyLines(g *generation, r io.ReadCloser, stream string) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	label := "gen " + strconv.Itoa(g.n)
	if g.role != "" {
		label = g.role + " " + strconv.Itoa(g.n)
	}
	for sc.Scan() {
		line := sc.Bytes()
		if stream == "stderr" {
			g.stderr.write(line)
		}
		if s.output != nil {
			s.outMu.Lock()
			fmt.Fprintf(s.output, "[%s %s] %s\n", label, stream, line)
			s.outMu.Unlock()
		} else {
			s.log.Info("child output", "gen", g.n, "role", g.role, "stream", stream, "line", string(line))
		}
	}
}

// controlSeen reports g's control messages in the events and the log.
func (s *Supervisor) controlSeen(g *generation) func(api.Control, error) {
	return func(m api.Control, err error) {
		switch {
		case err != nil:
			s.log.Warn("malformed control message", "gen", g.n, "err", err)
		case m.Type == api.CtlHello:
			s.Event(g.n, "hello", fmt.Sprintf("drains=%v state=%v rt=%v", m.Drains, m.State, m.RT))
		case m.Type == api.CtlError:
			s.Event(g.n, "child-error", m.Error)
		}
	}
}

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
