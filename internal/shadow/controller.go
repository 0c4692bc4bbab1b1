package shadow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/shadow/differ"
	"github.com/graftdev/graft/internal/shadow/worker"
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
	// Queue bounds the exchanges waiting for a worker; with Workers it
	// bounds the exchanges in flight (sent to the worker and not yet
	// compared): when Queue+Workers are, new ones are dropped and counted.
	// 0 means 256.
	Queue int
	// Workers is how many exchanges are mirrored at once; 0 means 8.
	Workers int
	// Worker starts the worker process that asks the lanes and compares
	// the answers; nil runs that work on goroutines of this process (the
	// same protocol, over a socket pair), at this process's priority.
	Worker *worker.Command
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

// slot is one exchange in flight: filled by Observe, sent by the writer
// (which then lets go of the bodies), and recorded and freed when its
// outcome comes back.
type slot struct {
	req                    *Request
	primary                *differ.Answer
	method, path, rawQuery string
}

// Controller mirrors sampled primary exchanges to a candidate lane and a
// secondary lane through its worker, which compares the three answers;
// the controller records the outcomes, judges them, and ends the run after
// its limit, its verdict, or Stop. The primary never waits for it: Observe
// only takes a free slot and enqueues, and drops when none is free.
type Controller struct {
	opts                 Options
	differ               *differ.Differ
	candidate, secondary string
	methods              map[string]bool
	slots                []slot
	free                 chan uint32 // free slots; empty: drop
	sendq                chan uint32 // filled slots for the writer; never full
	log                  *slog.Logger
	random               func() float64

	running                                                              atomic.Bool
	requests, eligible, mirrored, compared, dropped, skipped, laneErrors atomic.Uint64
	nextCheck                                                            atomic.Uint64 // compared count of the next verdict check
	workerPid                                                            atomic.Int64  // the worker process's, 0 for none

	endOnce sync.Once
	endCh   chan struct{}
	done    chan struct{}

	mu       sync.Mutex
	ended    string
	failed   string // a forced fail's reason (the candidate died)
	lost     string // why the worker went away during the run
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
	n := opts.Queue + opts.Workers
	c := &Controller{
		opts:      opts,
		differ:    d,
		candidate: candidate, secondary: secondary,
		methods: map[string]bool{},
		slots:   make([]slot, n),
		free:    make(chan uint32, n),
		sendq:   make(chan uint32, n),
		log:     opts.Logger,
		random:  rand.Float64,
		endCh:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	for i := range n {
		c.free <- uint32(i)
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
// exchange is sampled, filtered by method and enqueued, or dropped when
// Queue+Workers exchanges are in flight. A nil primary (no answer) is skipped. req and primary must
// not be changed afterwards.
func (c *Controller) Observe(req *Request, primary *differ.Answer) {
	if c.admit(req.Gen, req.Method, primary != nil, req.Truncated) {
		c.enqueue(req, primary)
	}
}

// admit counts an exchange and decides whether it takes a slot, from
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
	if len(c.free) == 0 {
		c.drop()
		return false
	}
	return true
}

// drop counts an admitted exchange that no slot could take.
func (c *Controller) drop() {
	c.dropped.Add(1)
	c.opts.Metrics.dropped()
}

func (c *Controller) enqueue(req *Request, primary *differ.Answer) {
	select {
	case i := <-c.free:
		c.slots[i] = slot{req: req, primary: primary, method: req.Method, path: req.Path, rawQuery: req.RawQuery}
		c.sendq <- i // never blocks: it has room for every slot
		c.mirrored.Add(1)
		c.opts.Metrics.mirrored()
	default:
		c.drop()
	}
}

// Run mirrors and compares until the run ends: its request limit, its
// duration, a decided verdict (when it has no limit) or a fail, Stop, the
// worker's exit, or ctx's end. It starts the worker, and waits for it
// before returning.
func (c *Controller) Run(ctx context.Context) error {
	c.mu.Lock()
	c.started = time.Now()
	c.mu.Unlock()
	c.opts.Metrics.setRunning(true)
	wk, err := c.startWorker(ctx)
	if err != nil {
		c.loseWorker(err.Error())
	} else {
		var wg sync.WaitGroup
		stopWriter := make(chan struct{})
		wg.Go(func() { c.write(wk.Conn, stopWriter) })
		wg.Go(func() { c.read(wk.Conn) })
		c.wait(ctx)
		// Closing the socket is the worker's signal to stop: it drops what
		// it has queued and cuts the lane requests under way short.
		c.running.Store(false)
		close(stopWriter)
		wk.Conn.Close()
		wg.Wait()
		// A worker lost during the run is exiting or dead: say how.
		if killed := wk.Stop(workerGrace); c.lostWorker() && !killed && wk.Err() != nil {
			c.loseWorker(wk.Err().Error())
		}
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

// workerGrace is how long a worker may take to exit once its socket is
// closed before it is killed; it holds nothing that needs more.
const workerGrace = 2 * time.Second

// startWorker starts the worker (a process when opts.Worker says how, else
// a goroutine) with this run's configuration.
func (c *Controller) startWorker(ctx context.Context) (*worker.Handle, error) {
	h, err := worker.Start(ctx, worker.Config{
		Candidate: c.candidate, Secondary: c.secondary, Timeout: c.opts.Timeout, BodyCap: c.opts.BodyCap,
		Workers: c.opts.Workers, InFlight: len(c.slots), Compare: c.opts.Differ.Compare, ExampleBody: c.differ.Options().ExampleBody,
	}, c.opts.Worker, c.log)
	if err != nil {
		return nil, err
	}
	c.workerPid.Store(int64(h.Pid))
	return h, nil
}

// wait returns when the run ends.
func (c *Controller) wait(ctx context.Context) {
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
}

// loseWorker ends the run because the worker went away (or never came).
func (c *Controller) loseWorker(why string) {
	c.mu.Lock()
	if c.ended == "" || c.ended == "worker exited" {
		if c.lost == "" {
			c.lost = why
		} else if why != c.lost {
			c.lost += ": " + why
		}
	}
	c.mu.Unlock()
	c.end("worker exited")
}

func (c *Controller) lostWorker() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost != ""
}

// write sends the queued exchanges to the worker, as many as are waiting
// in one write, until stop is closed or the socket breaks (read notices).
// It lets go of each exchange's bodies once they are encoded.
func (c *Controller) write(conn net.Conn, stop <-chan struct{}) {
	var buf []byte
	pause := time.NewTimer(worker.BatchEvery)
	defer pause.Stop()
	for {
		var i uint32
		select {
		case <-stop:
			return
		case i = <-c.sendq:
		}
		buf = worker.AppendWaiting(c.appendSlot(buf[:0], i), c.sendq, c.appendSlot)
		if _, err := conn.Write(buf); err != nil {
			return
		}
		if cap(buf) > 4*worker.BatchBytes {
			buf = nil // one large batch does not pin its buffer
		}
		// Exchanges that arrive in the next moment go out together: graft
		// wakes and writes at most 1/BatchEvery times a second, whatever
		// the rate, and the exchanges reach the lanes that much later.
		pause.Reset(worker.BatchEvery)
		select {
		case <-stop:
			return
		case <-pause.C:
		}
	}
}

func (c *Controller) appendSlot(buf []byte, i uint32) []byte {
	s := &c.slots[i]
	r := s.req
	buf = worker.AppendExchange(buf, i, &worker.Request{Method: r.Method, Path: r.Path, RawQuery: r.RawQuery, Header: r.Header, Body: r.Body}, s.primary)
	s.req, s.primary = nil, nil
	return buf
}

// read records the worker's outcomes until the socket closes. A socket
// that closes while the run is on means the worker died: that ends the run.
func (c *Controller) read(conn net.Conn) {
	outcomes := worker.NewOutcomeReader(conn)
	for {
		o, err := outcomes.Next()
		if err == nil && int(o.Slot) >= len(c.slots) {
			err = fmt.Errorf("%w: slot %d", worker.ErrFrame, o.Slot)
		}
		if err != nil {
			if c.running.Load() {
				if errors.Is(err, io.EOF) {
					err = errors.New("its socket closed")
				}
				c.loseWorker(fmt.Sprintf("the shadow worker exited during the run (%v)", err))
			}
			return
		}
		c.record(o)
	}
}

// record counts one outcome and frees its slot.
func (c *Controller) record(o *worker.Outcome) {
	s := &c.slots[o.Slot]
	method, path, rawQuery := s.method, s.path, s.rawQuery
	*s = slot{}
	defer func() { c.free <- o.Slot }() // never blocks: it has room for every slot
	if !c.running.Load() || o.Flags&worker.Aborted != 0 {
		return // the run is ending; this one is not evidence
	}
	if o.Flags&worker.SecondaryFailed != 0 {
		c.laneErrors.Add(1)
		c.opts.Metrics.laneError()
		return
	}
	c.differ.Record(method, path, rawQuery, o.Outcome)
	n := c.compared.Add(1)
	c.opts.Metrics.compared()
	if c.opts.Requests > 0 && n >= uint64(c.opts.Requests) {
		c.end("requests")
		return
	}
	// Judging costs O(fields·√n); checking every CheckEvery requests, and
	// later every 2% of the requests so far, bounds its share of the work
	// and delays a fail by at most 2% of the run.
	if next := c.nextCheck.Load(); n >= next {
		c.nextCheck.Store(n + max(uint64(c.opts.CheckEvery), n/50))
		jd := c.differ.Judge()
		c.opts.Metrics.setDivergent(jd)
		unlimited := c.opts.Requests == 0 && c.opts.For == 0
		if jd.Verdict == api.VerdictFail || unlimited && jd.Verdict == api.VerdictPass {
			c.end("verdict")
		}
	}
}

// Stop ends the run; Run returns once its worker has exited.
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

// Report returns the run's report so far, or its final one.
func (c *Controller) Report() *api.Report {
	c.mu.Lock()
	final, started, finished, ended, failed, lost := c.final, c.started, c.finished, c.ended, c.failed, c.lost
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
	} else if lost != "" {
		// The comparisons made so far stand; the run could not go on.
		j.Reason = lost + "; " + j.Reason
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
