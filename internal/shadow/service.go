package shadow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/proxy"
	"github.com/graftdev/graft/internal/shadow/differ"
	"github.com/graftdev/graft/internal/shadow/worker"
)

// Errors of the shadow service.
var (
	ErrBusy      = errors.New("a shadow run is already in progress (graft shadow stop ends it)")
	ErrNoRun     = errors.New("no shadow run")
	ErrNoProxy   = errors.New("shadowing needs proxy mode (graft run --proxy)")
	ErrNoSubject = errors.New("no candidate command")
)

// Lane is a process the service started for a run (a supervisor.Lane).
type Lane interface {
	Addr() string
	Done() <-chan struct{}
	Stop(ctx context.Context) error
}

// Host is what the service needs of a supervisor, as function fields so
// that tests and benchmarks can run it with plain servers as lanes. Attach
// fills it from a *supervisor.Supervisor.
type Host struct {
	// StartLane starts a process ("candidate" or "secondary") at the given
	// CPU priority ("idle" or "normal", see api.ShadowRequest) and returns once
	// it is ready.
	StartLane func(ctx context.Context, role string, cmd []string, priority string) (Lane, error)
	// Upgrade makes cmd the serving version (for promote); nil: promote
	// reports that it cannot.
	Upgrade func(ctx context.Context, cmd []string) (*api.UpgradeResult, error)
	// ServingCmd is the serving version's command line (the secondary's).
	ServingCmd func() ([]string, error)
	// SetHooks installs shadowing's proxy hooks (Service.Hooks) while a run
	// mirrors, and the zero Hooks when it ends; nil: the caller installs
	// Service.Hooks itself.
	SetHooks func(proxy.Hooks)
	// Event records a supervisor event; nil: none.
	Event func(gen int, kind, msg string)
	// Available says why no run can start here (ErrNoProxy); nil: it can.
	Available func() error
}

// ServiceOptions configures a Service; the zero value works.
type ServiceOptions struct {
	// Controller holds the defaults of every run's controller (queue,
	// workers, body cap, timeout); the request's own limits override them.
	Controller Options
	Logger     *slog.Logger
	// StopTimeout bounds stopping a lane; 0 means 10s.
	StopTimeout time.Duration
}

// Service runs one shadow run at a time for a supervisor and keeps the last
// one's report. Its Observe method is the proxy hook; it costs one atomic
// load when no run is active.
type Service struct {
	h    Host
	opts ServiceOptions
	log  *slog.Logger
	ctx  context.Context // the service's lifetime; Close cancels it
	stop context.CancelFunc
	wg   sync.WaitGroup

	active atomic.Pointer[Controller] // fed by Observe while a run mirrors

	// hooksMu orders the installs of the proxy hooks: a run's start and
	// end, and the switches of copying (setCopying).
	hooksMu sync.Mutex
	copying bool // the installed hooks ask the proxy to copy answers

	mu  sync.Mutex
	cur *run // the current or last run
}

type run struct {
	req      api.ShadowRequest
	state    string
	ctrl     *Controller
	err      string // the run could not start
	promoted string
	started  time.Time
	cancel   context.CancelFunc
	done     chan struct{}
}

// NewService returns a service that runs shadow runs through h.
func NewService(h Host, opts ServiceOptions) *Service {
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	s := &Service{h: h, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "shadow")
	s.ctx, s.stop = context.WithCancel(context.Background())
	return s
}

// Hooks are shadowing's proxy hooks: Observe, with the answers' headers and
// bodies copied for comparison.
func (s *Service) Hooks() proxy.Hooks {
	return proxy.Hooks{Observe: s.Observe, ObserveResponse: true}
}

// Observe is the proxy's Observe hook: it hands the exchange to the active
// run, if any. It never blocks.
func (s *Service) Observe(req *proxy.Request, resp *proxy.Response) {
	c := s.active.Load()
	if c == nil {
		return
	}
	if c.admit(req.Gen, req.Method, resp != nil, truncated(req.BodyLen, len(req.Body), c.opts.BodyCap)) {
		r, a := FromProxy(req, resp, c.opts.BodyCap)
		c.enqueue(r, a)
	} else if len(c.free) == 0 && s.h.SetHooks != nil {
		// Every slot is taken: until some are free again, every exchange
		// will be dropped, and the proxy need not copy their answers.
		s.setCopying(false)
	}
}

// observeUncopied is the Observe hook while every slot was taken: the
// proxy copies no answers, so an exchange cannot be mirrored; it is counted
// (as dropped, where a slot has come free meanwhile), and once an eighth of
// the slots are free the copying hooks come back (an eighth, not one, so
// that the hooks do not flap with every outcome).
func (s *Service) observeUncopied(req *proxy.Request, resp *proxy.Response) {
	c := s.active.Load()
	if c == nil {
		return
	}
	if c.admit(req.Gen, req.Method, resp != nil, truncated(req.BodyLen, len(req.Body), c.opts.BodyCap)) {
		c.drop()
	}
	if len(c.free) >= max(cap(c.free)/8, 1) {
		s.setCopying(true)
	}
}

// setCopying installs the hooks that ask the proxy to copy answers (on) or
// not, while a run mirrors. A dropped exchange costs the proxy its copy
// otherwise: at saturation, when nearly every exchange is dropped, that
// copy is most of what shadowing costs the primary path.
func (s *Service) setCopying(on bool) {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	if s.active.Load() == nil || s.copying == on {
		return
	}
	s.copying = on
	if on {
		s.h.SetHooks(s.Hooks())
	} else {
		s.h.SetHooks(proxy.Hooks{Observe: s.observeUncopied})
	}
}

// truncated says whether a body copy of n bytes is only the start of a body
// of length bodyLen (-1: unknown), given the copy's cap.
func truncated(bodyLen int64, n, bodyCap int) bool {
	return bodyLen > int64(n) || bodyLen < 0 && n >= bodyCap
}

// FromProxy converts a proxy exchange into what a Controller compares.
// bodyCap is the proxy's body cap: a body of unknown length that fills it
// is taken as cut. A nil resp (the exchange failed before an answer) gives
// a nil Answer, which the controller skips.
func FromProxy(req *proxy.Request, resp *proxy.Response, bodyCap int) (*Request, *differ.Answer) {
	r := &Request{
		Gen: req.Gen, Method: req.Method, Path: req.Path, RawQuery: req.RawQuery,
		Header: req.Header, Body: req.Body,
		Truncated: truncated(req.BodyLen, len(req.Body), bodyCap),
	}
	if resp == nil {
		return r, nil
	}
	a := &differ.Answer{
		Status: resp.Status, Header: resp.Header, Body: resp.Body,
		Truncated: truncated(resp.BodyLen, len(resp.Body), bodyCap),
	}
	return r, a
}

// Lane priorities a run may ask for (api.ShadowRequest.LanePriority); the
// worker process runs at its lanes'.
const (
	// PriorityIdle runs both lanes under SCHED_IDLE (nice 19 where that is
	// refused): they get only the CPU the service leaves, and when they
	// fall behind the queue drops. The default.
	PriorityIdle = worker.PriorityIdle
	// PriorityNormal runs the lanes like the service itself: mirroring
	// then takes CPU from the primary on a busy machine.
	PriorityNormal = worker.PriorityNormal
)

// Start begins a run: it starts the candidate and the secondary, then
// mirrors until the run ends. It returns at once with the run's report
// (state "starting").
func (s *Service) Start(req api.ShadowRequest) (*api.Report, error) {
	switch req.LanePriority {
	case "":
		req.LanePriority = PriorityIdle
	case PriorityIdle, PriorityNormal:
	default:
		return nil, fmt.Errorf("lane priority %q: want idle or normal", req.LanePriority)
	}
	if s.h.Available != nil {
		if err := s.h.Available(); err != nil {
			return nil, err
		}
	}
	if len(req.Command) == 0 {
		return nil, ErrNoSubject
	}
	if _, err := differ.NewRouter(differ.RouterOptions{Patterns: req.Routes}); err != nil {
		return nil, err
	}
	if req.Sample < 0 || req.Sample > 1 {
		return nil, fmt.Errorf("sample %g: want a fraction in (0, 1]", req.Sample)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cur.state != api.ShadowDone {
		return nil, ErrBusy
	}
	if s.ctx.Err() != nil {
		return nil, errors.New("shadow service closed")
	}
	ctx, cancel := context.WithCancel(s.ctx)
	r := &run{req: req, state: api.ShadowStarting, started: time.Now(), cancel: cancel, done: make(chan struct{})}
	s.cur = r
	s.wg.Go(func() { s.run(ctx, r) })
	return s.reportLocked(), nil
}

func (s *Service) run(ctx context.Context, r *run) {
	defer close(r.done)
	defer r.cancel()
	finish := func(err error) {
		s.mu.Lock()
		if err != nil {
			r.err = err.Error()
		}
		r.state = api.ShadowDone
		s.mu.Unlock()
	}
	cand, sec, err := s.startLanes(ctx, r.req)
	if err != nil {
		s.log.Warn("shadow did not start", "err", err)
		finish(err)
		return
	}
	stopLanes := func() {
		sctx, cancel := context.WithTimeout(context.Background(), s.opts.StopTimeout)
		defer cancel()
		cand.Stop(sctx)
		sec.Stop(sctx)
	}
	opts := s.opts.Controller
	if opts.Worker != nil && opts.Worker.Priority == "" {
		// The worker does the lanes' work, so it runs at their priority.
		w := *opts.Worker
		w.Priority = r.req.LanePriority
		opts.Worker = &w
	}
	opts.Requests = r.req.Requests
	opts.For = time.Duration(r.req.ForMS) * time.Millisecond
	opts.Sample = r.req.Sample
	if len(r.req.MirrorMethods) > 0 {
		opts.Methods = r.req.MirrorMethods
	}
	opts.Differ.Router.Patterns = r.req.Routes
	opts.Differ.Compare.IgnoreHeaders = append(slices.Clone(opts.Differ.Compare.IgnoreHeaders), r.req.IgnoreHeaders...)
	opts.Differ.Compare.IgnoreFields = append(slices.Clone(opts.Differ.Compare.IgnoreFields), r.req.IgnoreFields...)
	if r.req.TargetRate > 0 {
		opts.Differ.TargetRate = r.req.TargetRate
	}
	if opts.Logger == nil {
		opts.Logger = s.opts.Logger
	}
	c, err := NewController(opts, cand.Addr(), sec.Addr())
	if err != nil {
		stopLanes()
		finish(err)
		return
	}
	s.mu.Lock()
	r.ctrl, r.state = c, api.ShadowRunning
	s.mu.Unlock()
	s.event(fmt.Sprintf("shadow started: candidate %v on %s, secondary on %s, %s priority", r.req.Command, cand.Addr(), sec.Addr(), r.req.LanePriority))

	s.hooksMu.Lock()
	s.active.Store(c)
	if s.h.SetHooks != nil {
		s.h.SetHooks(s.Hooks())
		s.copying = true
	}
	s.hooksMu.Unlock()
	// A lane that exits ends the run: the candidate's exit is evidence
	// against it; the secondary's only takes the noise measure away.
	watch, unwatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-cand.Done():
			c.Fail("the candidate exited during the shadow run")
		case <-sec.Done():
			c.end("secondary exited")
		case <-watch.Done():
		}
	})
	c.Run(ctx)
	unwatch()
	wg.Wait()
	s.hooksMu.Lock()
	s.active.Store(nil)
	s.copying = false
	if s.h.SetHooks != nil {
		s.h.SetHooks(proxy.Hooks{})
	}
	s.hooksMu.Unlock()
	stopLanes()

	rep := c.Report()
	promoted := ""
	if r.req.Promote {
		switch rep.Verdict {
		case api.VerdictPass:
			if s.h.Upgrade == nil {
				promoted = "not promoted: no way to upgrade here"
				break
			}
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			res, err := s.h.Upgrade(uctx, r.req.Command)
			cancel()
			if err != nil {
				promoted = "upgrade to the candidate failed: " + err.Error()
			} else {
				promoted = fmt.Sprintf("upgraded to generation %d", res.Generation)
			}
		case api.VerdictFail:
			promoted = "candidate stopped"
		default:
			promoted = "not promoted: verdict undecided"
		}
	}
	s.mu.Lock()
	r.promoted = promoted
	r.state = api.ShadowDone
	s.mu.Unlock()
	s.event(fmt.Sprintf("shadow ended (%s): %s — %s", rep.Ended, rep.Verdict, rep.Reason))
	if promoted != "" {
		s.event("shadow promote: " + promoted)
	}
}

func (s *Service) startLanes(ctx context.Context, req api.ShadowRequest) (cand, sec Lane, err error) {
	secCmd := req.Secondary
	if len(secCmd) == 0 {
		if secCmd, err = s.h.ServingCmd(); err != nil {
			return nil, nil, fmt.Errorf("start shadow: %w", err)
		}
	}
	var wg sync.WaitGroup
	var cerr, serr error
	wg.Go(func() { cand, cerr = s.h.StartLane(ctx, "candidate", req.Command, req.LanePriority) })
	wg.Go(func() { sec, serr = s.h.StartLane(ctx, "secondary", secCmd, req.LanePriority) })
	wg.Wait()
	if cerr == nil && serr == nil {
		return cand, sec, nil
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.StopTimeout)
	defer cancel()
	if cand != nil {
		cand.Stop(sctx)
	}
	if sec != nil {
		sec.Stop(sctx)
	}
	return nil, nil, fmt.Errorf("start shadow: %w", errors.Join(cerr, serr))
}

func (s *Service) event(msg string) {
	s.log.Info(msg)
	if s.h.Event != nil {
		s.h.Event(0, "shadow", msg)
	}
}

// Stop ends the current run and waits until its lanes are stopped (and,
// with promote, the upgrade is done), or ctx ends. It returns the report.
func (s *Service) Stop(ctx context.Context) (*api.Report, error) {
	s.mu.Lock()
	r := s.cur
	s.mu.Unlock()
	if r == nil {
		return nil, ErrNoRun
	}
	s.mu.Lock()
	c := r.ctrl
	s.mu.Unlock()
	if c != nil {
		c.Stop()
	} else {
		r.cancel() // still starting its lanes
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("stop shadow: %w", ctx.Err())
	}
	return s.Report(), nil
}

// Wait returns when the current run (if any) has finished.
func (s *Service) Wait(ctx context.Context) error {
	s.mu.Lock()
	r := s.cur
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close ends any run and waits for it.
func (s *Service) Close() {
	s.mu.Lock()
	r := s.cur
	s.mu.Unlock()
	if r != nil {
		s.mu.Lock()
		c := r.ctrl
		s.mu.Unlock()
		if c != nil {
			c.Stop()
		}
	}
	s.stop()
	s.wg.Wait()
}

// Report is the current or last run's report; state idle when none ran.
func (s *Service) Report() *api.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reportLocked()
}

func (s *Service) reportLocked() *api.Report {
	r := s.cur
	c := s.opts.Controller.Differ
	if c.Alpha <= 0 {
		c.Alpha = 0.01
	}
	if c.TargetRate <= 0 {
		c.TargetRate = 0.01
	}
	if c.Confidence <= 0 {
		c.Confidence = 0.95
	}
	if r == nil {
		return &api.Report{Version: api.Version, State: api.ShadowIdle, Verdict: api.VerdictUndecided,
			Reason: "no shadow run yet", Alpha: c.Alpha, TargetRate: c.TargetRate, Confidence: c.Confidence, Routes: []api.RouteReport{}}
	}
	var rep *api.Report
	if r.ctrl != nil {
		rep = r.ctrl.Report()
	} else {
		if r.req.TargetRate > 0 {
			c.TargetRate = r.req.TargetRate
		}
		rep = &api.Report{Version: api.Version, Verdict: api.VerdictUndecided, Reason: "starting the candidate and the secondary",
			Started: r.started, Alpha: c.Alpha, TargetRate: c.TargetRate, Confidence: c.Confidence, Routes: []api.RouteReport{}}
		if r.err != "" {
			rep.Reason, rep.Ended = r.err, "error"
		}
	}
	rep.State = r.state
	rep.Candidate = r.req.Command
	rep.Promote = r.req.Promote
	rep.Promoted = r.promoted
	return rep
}
