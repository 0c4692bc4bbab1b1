package shadow

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/shadow/differ"
)

// DefaultMethods are the methods mirrored unless Options.Methods says
// otherwise: the ones HTTP defines as safe. Mirroring any other method
// repeats its side effect on both lanes (two more orders placed, two more
// mails sent), unless the lanes are isolated from what the primary writes.
var DefaultMethods = []string{"GET", "HEAD", "OPTIONS"}

// Options configures a Controller; the zero value works.
type Options struct {
	// Requests ends the run after this many compared requests; 0: no limit.
	Requests int
	// For ends the run after this long; 0: no limit. With neither limit the
	// run ends when the verdict is decided (pass or fail).
	For time.Duration
	// Sample is the fraction of eligible requests mirrored; 0 means 1.
	Sample float64
	// Methods mirrored; nil means DefaultMethods.
	Methods []string
	// Queue bounds the exchanges waiting for a worker; when it is full new
	// ones are dropped and counted. 0 means 256.
	Queue int
	// Workers is how many exchanges are mirrored at once; 0 means 8.
	Workers int
	// BodyCap bounds the bytes of a lane's answer kept for comparison; it
	// should equal the proxy's. 0 means 64 KiB.
	BodyCap int
	// Timeout bounds one lane request; 0 means 10s.
	Timeout time.Duration
	// CheckEvery is how many compared requests pass between verdict checks
	// that may end the run; 0 means 10.
	CheckEvery int
	Differ     differ.Options
	Metrics    *Metrics     // nil: none
	Logger     *slog.Logger // nil: log nothing
}

// Request is a primary request as the controller mirrors it.
type Request struct {
	// Gen is the generation that answered it; 0 means graft answered it
	// itself (a seal rule), and such requests are never mirrored.
	Gen      int
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
	// Truncated says Body is only the first bytes of the request body; such
	// requests cannot be replayed faithfully and are skipped.
	Truncated bool
}

type job struct {
	req     *Request
	primary *differ.Answer
}

// Controller mirrors sampled primary exchanges to a candidate lane and a
// secondary lane, compares the three answers, and ends the run after its
// limit, its verdict, or Stop. The primary never waits for it: Observe only
// enqueues, and drops when the bounded queue is full.
type Controller struct {
	opts      Options
	differ    *differ.Differ
	cand, sec *laneClient
	methods   map[string]bool
	queue     chan job
	log       *slog.Logger
	random    func() float64

	running                                                              atomic.Bool
	requests, eligible, mirrored, compared, dropped, skipped, laneErrors atomic.Uint64
	nextCheck                                                            atomic.Uint64 // compared count of the next verdict check

	endOnce sync.Once
	endCh   chan struct{}
	done    chan struct{}

	mu       sync.Mutex
	ended    string
	failed   string // a forced fail's reason (the candidate died)
	started  time.Time
	finished time.Time
	final    *differ.Judgement
}

// NewController returns a controller mirroring to the lanes at the given
// addresses ("127.0.0.1:port").
func NewController(opts Options, candidate, secondary string) (*Controller, error) {
	if opts.Sample <= 0 || opts.Sample > 1 {
		opts.Sample = 1
	}
	if opts.Methods == nil {
		opts.Methods = DefaultMethods
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.BodyCap <= 0 {
		opts.BodyCap = 64 << 10
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = 10
	}
	d, err := differ.New(opts.Differ)
	if err != nil {
		return nil, fmt.Errorf("new shadow controller: %w", err)
	}
	c := &Controller{
		opts:    opts,
		differ:  d,
		cand:    newLaneClient(candidate, opts),
		sec:     newLaneClient(secondary, opts),
		methods: map[string]bool{},
		queue:   make(chan job, opts.Queue),
		log:     opts.Logger,
		random:  rand.Float64,
		endCh:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, m := range opts.Methods {
		c.methods[strings.ToUpper(strings.TrimSpace(m))] = true
	}
	if c.log != nil {
		c.log = c.log.With("component", "shadow")
	}
	c.nextCheck.Store(uint64(opts.CheckEvery))
	c.running.Store(true)
	return c, nil
}

// Observe takes one completed primary exchange. It never blocks: the
// exchange is sampled, filtered by method and enqueued, or dropped when the
// queue is full. A nil primary (no answer) is skipped. req and primary must
// not be changed afterwards.
func (c *Controller) Observe(req *Request, primary *differ.Answer) {
	if c.admit(req.Gen, req.Method, primary != nil, req.Truncated) {
		c.enqueue(req, primary)
	}
}

// admit counts an exchange and decides whether it goes on the queue, from
// what the proxy knows before anything is copied: an exchange that will be
// dropped costs no allocation.
func (c *Controller) admit(gen int, method string, answered, truncated bool) bool {
	if !c.running.Load() {
		return false
	}
	c.requests.Add(1)
	if gen == 0 || !answered {
		c.skipped.Add(1)
		return false
	}
	if !c.methods[method] {
		return false
	}
	c.eligible.Add(1)
	if c.opts.Sample < 1 && c.random() >= c.opts.Sample {
		return false
	}
	if truncated {
		c.skipped.Add(1)
		return false
	}
	if len(c.queue) == cap(c.queue) {
		c.dropped.Add(1)
		c.opts.Metrics.dropped()
		return false
	}
	return true
}

func (c *Controller) enqueue(req *Request, primary *differ.Answer) {
	select {
	case c.queue <- job{req, primary}:
		c.mirrored.Add(1)
		c.opts.Metrics.mirrored()
	default:
		c.dropped.Add(1)
		c.opts.Metrics.dropped()
	}
}

// Run mirrors and compares until the run ends: its request limit, its
// duration, a decided verdict (when it has no limit) or a fail, Stop, or
// ctx's end. It waits for its workers before returning.
func (c *Controller) Run(ctx context.Context) error {
	c.mu.Lock()
	c.started = time.Now()
	c.mu.Unlock()
	c.opts.Metrics.setRunning(true)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Go(func() { c.work(wctx) })
	}
	var timer <-chan time.Time
	if c.opts.For > 0 {
		t := time.NewTimer(c.opts.For)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		c.end("stopped")
	case <-timer:
		c.end("duration")
	case <-c.endCh:
	}
	c.running.Store(false)
	cancel()
	wg.Wait()
	c.cand.close()
	c.sec.close()
	// Exchanges still queued were never compared; let them go.
	for len(c.queue) > 0 {
		<-c.queue
	}
	j := c.differ.Judge()
	c.mu.Lock()
	c.final = &j
	c.finished = time.Now()
	c.mu.Unlock()
	c.opts.Metrics.setRunning(false)
	c.opts.Metrics.setDivergent(j)
	close(c.done)
	if c.log != nil {
		c.log.Info("shadow ended", "reason", c.Ended(), "verdict", j.Verdict, "compared", c.compared.Load())
	}
	return nil
}

// Stop ends the run; Run returns once its workers are done.
func (c *Controller) Stop() { c.end("stopped") }

// Fail ends the run with verdict fail whatever the comparisons say, for
// evidence outside them (the candidate exited).
func (c *Controller) Fail(reason string) {
	c.mu.Lock()
	if c.failed == "" && c.ended == "" { // not after the run ended otherwise
		c.failed = reason
	}
	c.mu.Unlock()
	c.end("candidate exited")
}

// Done is closed when Run has returned.
func (c *Controller) Done() <-chan struct{} { return c.done }

// Ended says why the run ended, "" while it runs.
func (c *Controller) Ended() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

func (c *Controller) end(reason string) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.ended = reason
		c.mu.Unlock()
		c.running.Store(false)
		close(c.endCh)
	})
}

func (c *Controller) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-c.queue:
			// select picks at random among ready cases: a queued job must
			// not reach the lanes after the run has ended.
			if ctx.Err() != nil {
				return
			}
			c.mirror(ctx, j)
		}
	}
}

// mirror sends one exchange to both lanes at once and compares the answers.
func (c *Controller) mirror(ctx context.Context, j job) {
	// Which lane is asked from this goroutine (and so, mostly, first) is a
	// coin flip per request: a field that depends on when a lane is asked
	// (a clock at coarse resolution, a sequence) then differs as often for
	// the candidate as for the secondary, and is noise, as it should be.
	// Asked in a fixed order, the later lane would differ from the primary
	// more often, a false divergence (TestControllerLaneOrderIsRandom).
	var cand, sec *differ.Answer
	var wg sync.WaitGroup
	if c.random() < 0.5 {
		wg.Go(func() { cand = c.cand.do(ctx, j.req) })
		sec = c.sec.do(ctx, j.req)
	} else {
		wg.Go(func() { sec = c.sec.do(ctx, j.req) })
		cand = c.cand.do(ctx, j.req)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // the run is ending; this one is not evidence
	}
	if sec.Err != nil {
		// Without the secondary there is no noise measure for this request.
		c.laneErrors.Add(1)
		c.opts.Metrics.laneError()
		return
	}
	c.differ.Add(j.req.Method, j.req.Path, j.req.RawQuery, j.primary, sec, cand)
	n := c.compared.Add(1)
	c.opts.Metrics.compared()
	if c.opts.Requests > 0 && n >= uint64(c.opts.Requests) {
		c.end("requests")
		return
	}
	// Judging costs O(fields·√n); checking every CheckEvery requests, and
	// later every 2% of the requests so far, bounds its share of the work
	// and delays a fail by at most 2% of the run.
	next := c.nextCheck.Load()
	if n >= next && c.nextCheck.CompareAndSwap(next, n+max(uint64(c.opts.CheckEvery), n/50)) {
		jd := c.differ.Judge()
		c.opts.Metrics.setDivergent(jd)
		unlimited := c.opts.Requests == 0 && c.opts.For == 0
		if jd.Verdict == api.VerdictFail || unlimited && jd.Verdict == api.VerdictPass {
			c.end("verdict")
		}
	}
}

// Report returns the run's report so far, or its final one.
func (c *Controller) Report() *api.Report {
	c.mu.Lock()
	final, started, finished, ended, failed := c.final, c.started, c.finished, c.ended, c.failed
	c.mu.Unlock()
	var j differ.Judgement
	state := api.ShadowRunning
	if final != nil {
		j, state = *final, api.ShadowDone
	} else {
		j = c.differ.Judge()
	}
	if failed != "" {
		j.Verdict, j.Reason = api.VerdictFail, failed
	}
	o := c.differ.Options()
	return &api.Report{
		Version: api.Version, State: state, Verdict: j.Verdict, Reason: j.Reason, Ended: ended,
		Started: started, Finished: finished,
		Requests: c.requests.Load(), Eligible: c.eligible.Load(), Mirrored: c.mirrored.Load(),
		Compared: c.compared.Load(), Dropped: c.dropped.Load(), Skipped: c.skipped.Load(), LaneErrors: c.laneErrors.Load(),
		Alpha: o.Alpha, TargetRate: o.TargetRate, Confidence: o.Confidence,
		Routes: j.Routes,
	}
}
