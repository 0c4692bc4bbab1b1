// Package supervisor runs a service as numbered generations of child
// processes behind listeners it owns, and replaces one generation with the
// next without failing requests: readiness, cutover, probation with the
// previous generation parked, automatic rollback, drain, crash restarts with
// backoff, and the admin API (graft run, upgrade, rollback, status).
//
// It holds the decisions; the mechanisms they use are packages of their
// own: internal/listener (the public sockets and socket activation),
// internal/readiness (--ready, probes, sd_notify), internal/control (the
// control channel to a generation) and internal/child (starting and
// reaping a process).
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/proxy"
	"github.com/graftdev/graft/internal/readiness"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Supervisor. Zero values of durations get defaults.
type Options struct {
	Listen    []listener.Spec
	Inherited []listener.Inherited // graft's own socket-activated sockets, by name
	Command   []string             // the first generation's command line
	Proxy     bool                 // proxy mode; otherwise socket mode
	Ready     string               // --ready spec; "" = the mode's default

	Probation    time.Duration // default 30s
	Drain        time.Duration // default 30s
	StartTimeout time.Duration // default 60s
	StopSignal   syscall.Signal

	AdminSocket string // "" = no unix admin socket (tests may use Handler)
	AdminTCP    string // "" = none; requires AdminToken
	AdminToken  string
	MetricsAddr string

	// NotifySocket is graft's own NOTIFY_SOCKET: READY=1 goes there once
	// the first generation serves.
	NotifySocket string
	Env          []string // base environment of generations; nil = os.Environ()
	RuntimeDir   string   // private dir for notify and rt sockets; "" = a new temp dir
	Logger       *slog.Logger
	Output       io.Writer // child output as "[gen N stream] line"; nil = logged through Logger
	// RestartBackoff is the first delay before restarting a crashed serving
	// generation; it doubles up to MaxRestartBackoff. Defaults 100ms, 30s.
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
}

// Supervisor owns the listeners and the generations of one service.
type Supervisor struct {
	opts      Options
	log       *slog.Logger
	output    io.Writer
	outMu     sync.Mutex
	env       []string
	runDir    string
	ownRunDir bool
	proxyMode bool
	ready     readiness.Spec
	listeners []*listener.Listener
	proxy     *proxy.Proxy
	mux       *http.ServeMux
	reg       *prometheus.Registry
	probeHTTP *http.Client

	busy chan struct{} // one transition (upgrade, rollback, restart) at a time

	mu        sync.Mutex
	ctx       context.Context
	nextGen   int
	gens      []*generation
	serving   *generation
	parked    *generation
	prevCmd   []string // the command line before the last cutover (rollback target)
	servedCmd []string // the command line of the generation that served last
	probation int      // bumped at each cutover: stale probation timers do nothing
	// probationEnd is when the current probation ends; a serving generation
	// that crashes before it is rolled back even without a parked one.
	probationEnd time.Time
	events       []api.Event
	changed      chan struct{} // closed and replaced at every event
	upgrading    bool
	busyKind     string // who holds busy: "upgrade", "rollback" or "internal"
	backoff      time.Duration
	restartOn    bool // a restart loop is running
	notified     bool
	onCrash      []func(Crash)
	addEnv       []func(gen int) []string
	started      bool
	cancel       context.CancelFunc // ends Run (fail)
	fatal        error              // why Run ended on its own

	wg sync.WaitGroup

	metrics
}

// Crash describes a generation that died without being asked to.
type Crash struct {
	Gen      int
	Time     time.Time
	Err      error           // exit status or signal
	Stderr   []byte          // the last 64 KiB of its stderr (panic traces)
	InFlight []proxy.Request // proxy mode: requests in flight to it when it died
	Serving  bool            // it was the serving generation
}

// Errors of transitions.
var (
	ErrBusy       = errors.New("another upgrade or rollback is in progress (upgrades are serialized; retry when it has finished)")
	ErrNoRollback = errors.New("nothing to roll back to")
	ErrNotServing = errors.New("no generation serves")
)

// New checks opts, opens the listeners and prepares the admin API. Nothing
// is started before Run.
func New(opts Options) (*Supervisor, error) {
	if len(opts.Command) == 0 {
		return nil, errors.New("new supervisor: no command")
	}
	if len(opts.Listen) == 0 {
		return nil, errors.New("new supervisor: no listener (--listen NAME=ADDR)")
	}
	names := map[string]bool{}
	for _, l := range opts.Listen {
		if names[l.Name] {
			return nil, fmt.Errorf("new supervisor: listener name %q given twice", l.Name)
		}
		names[l.Name] = true
	}
	if opts.AdminTCP != "" && opts.AdminToken == "" {
		return nil, errors.New("new supervisor: a TCP admin address needs a token")
	}
	ready, err := readiness.Parse(opts.Ready, opts.Proxy)
	if err != nil {
		return nil, fmt.Errorf("new supervisor: %w", err)
	}
	setDefault(&opts.Probation, 30*time.Second)
	setDefault(&opts.Drain, 30*time.Second)
	setDefault(&opts.StartTimeout, 60*time.Second)
	setDefault(&opts.RestartBackoff, 100*time.Millisecond)
	setDefault(&opts.MaxRestartBackoff, 30*time.Second)
	if opts.StopSignal == 0 {
		opts.StopSignal = syscall.SIGTERM
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{
		opts:      opts,
		log:       log.With("component", "supervisor"),
		output:    opts.Output,
		env:       opts.Env,
		proxyMode: opts.Proxy,
		ready:     ready,
		mux:       http.NewServeMux(),
		reg:       prometheus.NewRegistry(),
		busy:      make(chan struct{}, 1),
		probeHTTP: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		backoff:   opts.RestartBackoff,
		changed:   make(chan struct{}),
	}
	if s.env == nil {
		s.env = os.Environ()
	}
	s.runDir = opts.RuntimeDir
	if s.runDir == "" {
		if s.runDir, err = os.MkdirTemp("", "graft-run-"); err != nil {
			return nil, fmt.Errorf("new supervisor: runtime dir: %w", err)
		}
		s.ownRunDir = true
	} else if err := os.MkdirAll(s.runDir, 0o700); err != nil {
		return nil, fmt.Errorf("new supervisor: runtime dir: %w", err)
	}
	if s.listeners, err = listener.Open(opts.Listen, opts.Inherited, !opts.Proxy); err != nil {
		s.cleanupDir()
		return nil, fmt.Errorf("new supervisor: %w", err)
	}
	if s.proxyMode {
		s.proxy = proxy.New(proxy.Options{Logger: log})
	}
	s.initMetrics()
	s.routes()
	return s, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

func (s *Supervisor) cleanupDir() {
	if s.ownRunDir {
		os.RemoveAll(s.runDir)
	}
}

// Handle mounts an extra admin API route (Go 1.22 patterns). Call before Run.
func (s *Supervisor) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// OnCrash registers f, called when a generation dies unexpectedly, before
// the restart decision. Call before Run.
func (s *Supervisor) OnCrash(f func(Crash)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCrash = append(s.onCrash, f)
}

// AddEnv registers f, whose "K=V" strings are added to each new
// generation's environment. Call before Run.
func (s *Supervisor) AddEnv(f func(gen int) []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addEnv = append(s.addEnv, f)
}

// Registry is where features register their metrics; it is served on
// /metrics.
func (s *Supervisor) Registry() *prometheus.Registry { return s.reg }

// Proxy returns the proxy in proxy mode, else nil.
func (s *Supervisor) Proxy() *proxy.Proxy { return s.proxy }

// Logger returns the supervisor's logger.
func (s *Supervisor) Logger() *slog.Logger { return s.log }

// Addrs returns the public listeners' addresses, in --listen order.
func (s *Supervisor) Addrs() []string {
	var out []string
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// Serving returns the serving generation and its GRAFT_RT_SOCKET path
// (0, "" when none serves).
func (s *Supervisor) Serving() (gen int, rtSocket string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving == nil {
		return 0, ""
	}
	return s.serving.n, s.serving.rtSocket
}

// Event adds an entry to the recent events shown by graft status.
func (s *Supervisor) Event(gen int, kind, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventLocked(gen, kind, msg)
}

const maxEvents = 200

func (s *Supervisor) eventLocked(gen int, kind, msg string) {
	s.events = append(s.events, api.Event{Time: time.Now(), Generation: gen, Kind: kind, Message: msg})
	if len(s.events) > maxEvents {
		s.events = append(s.events[:0:0], s.events[len(s.events)-maxEvents:]...)
	}
	s.log.Info(msg, "event", kind, "gen", gen)
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitFor waits until cond holds for the status (checked at every event).
func (s *Supervisor) WaitFor(ctx context.Context, cond func(*api.Status) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s.Status()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run starts the first generation and supervises until ctx ends; then it
// stops every generation (within the drain deadline) and closes the
// listeners.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("run supervisor: already running")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.started, s.ctx, s.cancel = true, ctx, cancel
	s.mu.Unlock()
	defer s.cleanupDir()

	admin, err := s.startAdmin(ctx)
	if err != nil {
		for _, l := range s.listeners {
			l.Close()
		}
		return err
	}
	var serveWG sync.WaitGroup
	if s.proxyMode {
		for _, l := range s.listeners {
			serveWG.Go(func() { s.proxy.Serve(l.Net()) })
		}
	}
	s.wg.Go(func() { s.first(ctx) })

	<-ctx.Done()
	if s.proxyMode {
		// Stop taking requests first, so the generations can go idle.
		sctx, cancel := context.WithTimeout(context.Background(), s.opts.Drain)
		s.proxy.Shutdown(sctx)
		cancel()
	}
	s.shutdown()
	admin.close()
	for _, l := range s.listeners {
		l.Close()
	}
	serveWG.Wait()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

// fail ends Run with err.
func (s *Supervisor) fail(err error) {
	s.mu.Lock()
	if s.fatal == nil {
		s.fatal = err
	}
	s.mu.Unlock()
	s.cancel()
}

// first brings up the first generation; failures go to the restart loop.
func (s *Supervisor) first(ctx context.Context) {
	if !s.acquire() {
		return
	}
	g, err := s.startReady(ctx, startOpts{cmd: s.opts.Command})
	if err != nil {
		s.Event(0, "start-failed", err.Error())
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			// A command that cannot be run at all will not get better by
			// retrying: graft run fails instead of looping.
			s.fail(fmt.Errorf("first generation: %w", err))
			s.release()
			return
		}
		s.release()
		s.scheduleRestart(s.opts.Command)
		return
	}
	s.cutover(g, nil, false)
	s.release()
}

// shutdown stops every live generation in parallel.
func (s *Supervisor) shutdown() {
	s.mu.Lock()
	var live []*generation
	for _, g := range s.gens {
		if g.alive() {
			live = append(live, g)
		}
	}
	s.serving, s.parked = nil, nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, g := range live {
		wg.Go(func() { s.stop(g, s.opts.Drain) })
	}
	wg.Wait()
}
