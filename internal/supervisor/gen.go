package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/child"
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
	proc     *child.Process
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
	if ctl, peer, err := control.Pair(); err == nil {
		defer peer.Close() // the child's end: it has its own copy
		g.ctl = ctl
		env = append(env, "GRAFT_CONTROL_FD="+strconv.Itoa(3+len(files)))
		files = append(files, peer.Fd())
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
	argv := args
	if !s.proxyMode && so.role == "" {
		argv = shimArgv(path, args)
		path = argv[0]
	}
	co := child.Options{Path: path, Argv: argv, Env: env, Files: files, Line: s.childOutput(g)}
	if so.lowPriority {
		co.ForkExec = s.forkExecLowPriority // lane.go
	}
	proc, err := child.Start(co)
	if err != nil {
		notify.Close()
		if g.ctl != nil {
			g.ctl.Close()
		}
		return nil, fmt.Errorf("start generation %d: %w", n, err)
	}
	g.proc = proc
	g.started = time.Now()
	s.mu.Lock()
	s.gens = append(s.gens, g)
	s.mu.Unlock()
	s.Event(n, "started", fmt.Sprintf("pid %d: %s", g.proc.Pid, strings.Join(so.cmd, " ")))
	s.metricStarts.Inc()

	s.wg.Go(notify.Receive)
	if g.ctl != nil {
		s.wg.Go(func() { g.ctl.Receive(s.controlSeen(g)) })
	}
	s.wg.Go(func() {
		err := proc.Run()
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

// childOutput writes g's output lines to Options.Output as
// "[gen N stream] line", or logs them.
func (s *Supervisor) childOutput(g *generation) func(stream string, line []byte) {
	label := "gen " + strconv.Itoa(g.n)
	if g.role != "" {
		label = g.role + " " + strconv.Itoa(g.n)
	}
	return func(stream string, line []byte) {
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
