package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/graftdev/graft/api"
)

// Options configure a Gen. The zero value works.
type Options struct {
	// Logger receives the generation's events; nil logs nothing.
	Logger *slog.Logger
	// DrainTimeout bounds a drain started by SIGTERM or by a drain message
	// without a deadline; 0 means 30s.
	DrainTimeout time.Duration
	// NoSignals leaves SIGTERM alone (the program handles it and calls Drain).
	NoSignals bool
}

// Gen is this process as one generation of a supervised service: its
// inherited listeners, its state, and its side of the control protocol.
type Gen struct {
	opts   Options
	log    *slog.Logger
	env    osEnv
	number int // GRAFT_GENERATION, 0 when unsupervised

	initErr    error
	inherited  []inheritedFD
	claimed    []bool
	notifyPath string
	ctl        *control
	stateFD    int

	gate *gate
	work counter // requests being served, not counting those waiting in the gate

	mu        sync.Mutex
	items     map[string]*item
	order     []string
	epoch     uint64
	ready     bool
	accepting bool
	acceptCh  chan struct{} // closed and replaced when accepting or draining changes
	lns       []*gatedListener
	draining  bool
	deadline  time.Time

	drainCtx    context.Context
	drainCancel context.CancelFunc
	stop        chan struct{}
	closeOnce   sync.Once
	wg          sync.WaitGroup
	fwd         *forwarder
	pending     chan pendingState // the handed-down state, being read
}

type pendingState struct {
	epoch   uint64
	entries []entry
	err     error
}

// New reads the generation protocol from the environment, claims the
// control channel and unsets the variables so that the program's own
// children do not inherit them. Errors in the environment are reported by
// Ready and Listen.
func New(opts Options) *Gen { return newGen(opts, realEnv()) }

func newGen(opts Options, env osEnv) *Gen {
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gen{
		opts:     opts,
		log:      log.With("component", "live"),
		env:      env,
		gate:     newGate(),
		items:    map[string]*item{},
		acceptCh: make(chan struct{}),
		stop:     make(chan struct{}),
		stateFD:  -1,
	}
	g.drainCtx, g.drainCancel = context.WithCancel(context.Background())
	g.fwd = newForwarder()
	g.number, _ = strconv.Atoi(env.getenv(envGeneration))

	var errs []error
	fds, err := parseListenFDs(env.getenv, env.getpid())
	errs = append(errs, err)
	for _, f := range fds {
		closeOnExec(f.fd)
	}
	g.inherited, g.claimed = fds, make([]bool, len(fds))
	g.notifyPath = env.getenv(envNotifySocket)
	if cfd, err := parseFD(envControlFD, env.getenv(envControlFD)); err != nil {
		errs = append(errs, err)
	} else if cfd >= 0 {
		g.ctl, err = openControl(cfd)
		errs = append(errs, err)
	}
	g.stateFD, err = parseFD(envStateFD, env.getenv(envStateFD))
	errs = append(errs, err)
	if g.stateFD >= 0 {
		closeOnExec(g.stateFD)
		// Read the stream at once, while the program initializes: the
		// predecessor holds its mutations until we are ready.
		syscall.SetNonblock(g.stateFD, true)
		f := os.NewFile(uintptr(g.stateFD), "graft-state")
		g.stateFD = -1
		growBuffer(f, syscall.SO_RCVBUF, syscall.SO_RCVBUFFORCE)
		g.pending = make(chan pendingState, 1)
		go func() {
			signalReader(f)
			epoch, entries, err := parseState(f)
			f.Close()
			g.pending <- pendingState{epoch, entries, err}
		}()
	}
	for _, k := range []string{envListenFDs, envListenPID, envListenFDNames, envNotifySocket, envControlFD, envStateFD} {
		env.unsetenv(k)
	}
	g.initErr = errors.Join(errs...)
	return g
}

// Generation is the supervisor's number for this generation, 0 when the
// program runs alone.
func (g *Gen) Generation() int { return g.number }

// Supervised reports whether a graft supervisor's control channel is open.
func (g *Gen) Supervised() bool { return g.ctl != nil }

// Listen returns the inherited listener called name, or, when there is
// none, a listener bound to addr ("host:port" or "unix:/path"). The
// listener accepts only while this generation serves: Accept waits until
// Ready, waits while the generation is parked, and fails with
// net.ErrClosed once it drains.
func (g *Gen) Listen(name, addr string) (net.Listener, error) {
	if g.initErr != nil {
		return nil, fmt.Errorf("listen %q: %w", name, g.initErr)
	}
	g.mu.Lock()
	var ln net.Listener
	for i, f := range g.inherited {
		if f.name == name && !g.claimed[i] {
			g.claimed[i] = true
			g.mu.Unlock()
			l, err := fileListener(f.fd, name)
			if err != nil {
				return nil, err
			}
			ln = l
			break
		}
	}
	if ln == nil {
		g.mu.Unlock()
		if addr == "" {
			return nil, fmt.Errorf("listen %q: not inherited and no default address", name)
		}
		network, address := splitAddr(addr)
		l, err := net.Listen(network, address)
		if err != nil {
			return nil, fmt.Errorf("listen %q: %w", name, err)
		}
		ln = l
	}
	return g.gateListener(ln), nil
}

// Inherited lists the names of the inherited listeners not yet taken by
// Listen, one entry per socket (a name may repeat). Ready closes them.
func (g *Gen) Inherited() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var names []string
	for i, f := range g.inherited {
		if !g.claimed[i] {
			names = append(names, f.name)
		}
	}
	return names
}

// Register adds a state item. Register every item before Ready: Ready
// decodes the state handed down into the registered items.
func (g *Gen) Register(it Item) error {
	if it.Name == "" || len(it.Name) > 1<<10 || it.Version < 1 || it.Encode == nil || it.Decode == nil {
		return fmt.Errorf("register %q: need a name, a version ≥ 1, Encode and Decode", it.Name)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ready {
		return fmt.Errorf("register %q: after Ready", it.Name)
	}
	if _, dup := g.items[it.Name]; dup {
		return fmt.Errorf("register %q: already registered", it.Name)
	}
	g.items[it.Name] = &item{Item: it, up: map[int]Migration{}, down: map[int]Migration{}}
	g.order = append(g.order, it.Name)
	return nil
}

// Migrate registers the migration of item name from version from to
// from+1, used when a predecessor hands down an older version.
func (g *Gen) Migrate(name string, from int, m Migration) error {
	return g.migration(name, from, m, true)
}

// MigrateDown registers the migration of item name from version from to
// from-1. With it, this generation also sends the older encoding, so a
// predecessor that only knows the older version can take the state back
// on rollback.
func (g *Gen) MigrateDown(name string, from int, m Migration) error {
	return g.migration(name, from, m, false)
}

func (g *Gen) migration(name string, from int, m Migration, up bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	it, ok := g.items[name]
	if !ok || m == nil || from < 1 {
		return fmt.Errorf("migration of %q from version %d: register the item first", name, from)
	}
	if up {
		it.up[from] = m
	} else {
		it.down[from] = m
	}
	return nil
}

// Ready loads the state handed down by the predecessor (if any), closes
// the inherited sockets nobody claimed, tells the supervisor this
// generation is ready, and starts accepting and following control
// messages. If the state cannot be taken it reports the error to the
// supervisor and returns it: the program must then exit non-zero, and the
// supervisor resumes the predecessor with its state intact.
func (g *Gen) Ready() error {
	if g.initErr != nil {
		g.sendError(g.initErr)
		return fmt.Errorf("ready: %w", g.initErr)
	}
	g.mu.Lock()
	if g.ready {
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	if g.pending != nil {
		start := time.Now()
		p := <-g.pending
		g.pending = nil
		n, err := g.apply(p.epoch, p.entries, p.err)
		if err != nil {
			// Never ready without the state: a second Ready fails too.
			g.initErr = fmt.Errorf("load state: %w", err)
			g.sendError(err)
			return fmt.Errorf("ready: load state: %w", err)
		}
		g.log.Info("state loaded", "bytes", n, "took", time.Since(start))
	}
	g.mu.Lock()
	for i, f := range g.inherited {
		if !g.claimed[i] {
			g.claimed[i] = true
			syscall.Close(f.fd)
			g.log.Info("closed unclaimed inherited socket", "name", f.name, "fd", f.fd)
		}
	}
	names := slices.Clone(g.order)
	g.ready = true
	g.mu.Unlock()

	if g.ctl != nil {
		if err := g.ctl.send(api.Control{Type: api.CtlHello, PID: g.env.getpid(), State: names, Drains: true}); err != nil {
			return fmt.Errorf("ready: %w", err)
		}
	}
	g.setAccepting(true)
	if err := notify(g.notifyPath, "READY=1"); err != nil {
		return fmt.Errorf("ready: %w", err)
	}
	if g.ctl != nil {
		g.wg.Go(g.controlLoop)
	}
	if !g.opts.NoSignals {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		g.wg.Go(func() {
			defer signal.Stop(sig)
			select {
			case <-sig:
				g.log.Info("SIGTERM: draining")
				g.Drain(g.opts.DrainTimeout)
			case <-g.stop:
			}
		})
	}
	return nil
}

// load reads a whole state stream from r and decodes it into the
// registered items. Nothing is decoded unless the whole stream arrived
// intact and every item in it can be taken.
func (g *Gen) load(r io.Reader) (int, error) {
	epoch, entries, err := parseState(r)
	return g.apply(epoch, entries, err)
}

func (g *Gen) apply(epoch uint64, entries []entry, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	g.mu.Lock()
	items := g.items
	cur := g.epoch
	g.mu.Unlock()
	if epoch <= cur {
		return 0, fmt.Errorf("%w: stream epoch %d already applied here (at %d)", ErrState, epoch, cur)
	}
	todo, err := plan(items, entries)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range todo {
		if err := items[e.name].Decode(e.reader()); err != nil {
			return n, fmt.Errorf("%w: decode %q: %w", ErrState, e.name, err)
		}
		n += e.size
	}
	g.mu.Lock()
	g.epoch = epoch
	g.mu.Unlock()
	return n, nil
}

// save streams every item to w; mutations must be held.
func (g *Gen) save(w io.Writer) (int64, error) {
	g.mu.Lock()
	items := make([]*item, 0, len(g.order))
	for _, name := range g.order {
		items = append(items, g.items[name])
	}
	g.epoch++
	epoch := g.epoch
	g.mu.Unlock()
	return encodeState(w, epoch, items)
}

// Update runs fn, which mutates registered state, unless a handoff is under
// way: then it waits for the outcome (a bounded pause), and returns
// ErrMoved without running fn if the state went to another generation.
func (g *Gen) Update(ctx context.Context, fn func() error) error {
	if err := g.gate.enter(ctx); err != nil {
		return err
	}
	defer g.gate.leave()
	return fn()
}

// Draining returns a context that ends when this generation is asked to
// drain; long-lived handlers (WebSockets, streams) watch it to finish up
// before DrainDeadline.
func (g *Gen) Draining() context.Context { return g.drainCtx }

// DrainDeadline is when a drain in progress closes what is still open;
// zero before a drain.
func (g *Gen) DrainDeadline() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.deadline
}

// Drain stops accepting for good and asks every server to finish within
// timeout. The supervisor's drain message and SIGTERM call it.
func (g *Gen) Drain(timeout time.Duration) {
	g.mu.Lock()
	if g.draining {
		g.mu.Unlock()
		return
	}
	g.draining = true
	g.deadline = time.Now().Add(timeout)
	g.stopAcceptingLocked()
	for _, l := range g.lns {
		if l.dl == nil {
			// No deadline to interrupt its Accept with: closing our handle
			// is the only way (the socket itself stays with the supervisor).
			l.Close()
		}
	}
	g.mu.Unlock()
	// Mutations still held belong to whoever has the state now.
	if g.gate.get() == gateHeld {
		g.gate.set(gateMoved)
	}
	g.drainCancel()
}

// Close stops following the supervisor and waits for the goroutines the
// Gen started. It does not close listeners or connections.
func (g *Gen) Close() error {
	g.closeOnce.Do(func() {
		close(g.stop)
		if g.ctl != nil {
			g.ctl.close()
		}
	})
	g.wg.Wait()
	return nil
}

func (g *Gen) sendError(err error) {
	if g.ctl != nil {
		if serr := g.ctl.send(api.Control{Type: api.CtlError, PID: g.env.getpid(), Error: err.Error()}); serr != nil {
			g.log.Warn("report error to supervisor", "err", serr)
		}
	}
}

// setAccepting starts or stops every listener's accepting.
func (g *Gen) setAccepting(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if on {
		if g.draining || g.accepting {
			return
		}
		g.accepting = true
		close(g.acceptCh)
		g.acceptCh = make(chan struct{})
		return
	}
	g.stopAcceptingLocked()
}

func (g *Gen) stopAcceptingLocked() {
	g.accepting = false
	for _, l := range g.lns {
		l.interrupt()
	}
	close(g.acceptCh)
	g.acceptCh = make(chan struct{})
}

// serving reports whether new work is welcome: ready, not parked, not
// draining. Responses given otherwise carry "Connection: close".
func (g *Gen) serving() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.accepting && !g.draining
}

// moved reports whether requests must go to the generation that has the
// state now.
func (g *Gen) moved() bool {
	return g.gate.get() == gateMoved && g.hasItems()
}

func (g *Gen) hasItems() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.items) > 0
}
