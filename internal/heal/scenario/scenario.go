// Package scenario drives the self-healing acceptance scenario shared by
// heal's integration test and bench/heal: a real supervisor in proxy mode
// runs a service that crashes on one kind of input, mixed benign and
// malicious load runs against it, and the numbers (crashes before the seal,
// time to seal, benign success, benign requests blocked) are counted.
package scenario

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/heal"
	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/supervisor"
)

// Kinds of attack the crashy fixture (internal/heal/testdata/crashy) dies of.
const (
	NilMap = "nilmap" // POST with "tags": null and labels: a nil-map write in a goroutine
	Index  = "index"  // GET ?page=7: an index out of range in a goroutine
)

// Config of one run.
type Config struct {
	Fixture     string // the built crashy program
	Kind        string // NilMap or Index
	StorePath   string // the seal rule file
	Workers     int    // concurrent keep-alive clients; 0 means 8
	AttackEvery int    // one request in AttackEvery is malicious; 0 means 10
	// BenignAfterSeal is how many benign requests to send after the rule
	// is installed; 0 means 10,000. Without a seal the run ends at Timeout.
	BenignAfterSeal int
	Timeout         time.Duration // 0 means 90s
	// Warmup is how many benign requests run before the attack starts, as
	// a service runs for a while before someone finds its crash; 0 means
	// 2,000, negative none.
	Warmup int
	// Listen is the public address; "" picks a free port. A restart test
	// reuses the first run's (ListenAddr), as a real deployment would.
	Listen string
	// AdminSocket serves the admin API on this unix socket; "" none.
	AdminSocket string
	// AlertKey is the pinned key for alerts (graft run --alert-key).
	AlertKey ed25519.PublicKey
	Output   io.Writer // child output; nil discards
	// NoHeal runs the same load without self-healing (the baseline): the
	// run ends after BenignAfterSeal benign requests.
	NoHeal bool
	Logger *slog.Logger
}

// Result of one run.
type Result struct {
	Benign, BenignOK, BenignBlocked, BenignFailed uint64
	BenignAfterSeal                               uint64
	Attacks, AttacksSealed                        uint64
	Crashes, CrashesBeforeSeal                    int
	FirstCrash, Sealed                            time.Time
	Rules                                         []api.SealRule
	Failures                                      []string // first few benign failures
	RequestsPerSec                                float64
	Listen                                        string // the public address used
}

// TimeToSeal is the time from the first crash to the rule's installation.
func (r Result) TimeToSeal() time.Duration {
	if r.Sealed.IsZero() || r.FirstCrash.IsZero() {
		return -1
	}
	return r.Sealed.Sub(r.FirstCrash)
}

// BenignSuccess is the share of benign requests answered 2xx.
func (r Result) BenignSuccess() float64 {
	if r.Benign == 0 {
		return 0
	}
	return float64(r.BenignOK) / float64(r.Benign)
}

func (r Result) String() string {
	return fmt.Sprintf("benign %d (ok %d, failed %d, blocked %d, %.4f%% ok), attacks %d (sealed %d), crashes %d (%d before seal), time to seal %v, %.0f req/s",
		r.Benign, r.BenignOK, r.BenignFailed, r.BenignBlocked, 100*r.BenignSuccess(), r.Attacks, r.AttacksSealed,
		r.Crashes, r.CrashesBeforeSeal, r.TimeToSeal(), r.RequestsPerSec)
}

// Service is a running supervisor with self-healing attached.
type Service struct {
	Sup      *supervisor.Supervisor
	Heal     *heal.Attached
	URL      string
	cancel   context.CancelFunc
	done     chan error
	mu       sync.Mutex
	crashes  []time.Time
	sealed   time.Time
	sealedAt int // crashes when the first rule appeared
}

// Start runs a supervisor in proxy mode over the fixture, with self-healing
// attached and its rules in storePath, and waits until it serves.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	sup, err := supervisor.New(supervisor.Options{
		Listen:         []listener.Spec{{Name: "http", Addr: listen}},
		Command:        []string{cfg.Fixture},
		Proxy:          true,
		Output:         out,
		Logger:         cfg.Logger,
		Drain:          3 * time.Second,
		StartTimeout:   10 * time.Second,
		RestartBackoff: 20 * time.Millisecond,
		AdminSocket:    cfg.AdminSocket,
	})
	if err != nil {
		return nil, fmt.Errorf("start scenario: %w", err)
	}
	var a *heal.Attached
	if !cfg.NoHeal {
		a, err = heal.Attach(sup, heal.AttachOptions{Options: heal.Options{StorePath: cfg.StorePath, Logger: cfg.Logger}, AlertKey: cfg.AlertKey})
		if err != nil {
			return nil, fmt.Errorf("start scenario: %w", err)
		}
	}
	s := &Service{Sup: sup, Heal: a, URL: "http://" + sup.Addrs()[0], done: make(chan error, 2)}
	// Runs after heal's hook: a rule installed for this crash is visible.
	sup.OnCrash(func(c supervisor.Crash) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.crashes = append(s.crashes, c.Time)
		if a != nil && s.sealed.IsZero() && len(a.Healer.List()) > 0 {
			s.sealed, s.sealedAt = time.Now(), len(s.crashes)
		}
	})
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go func() { s.done <- sup.Run(rctx) }()
	go func() {
		if a == nil {
			s.done <- nil
			return
		}
		s.done <- a.Run(rctx)
	}()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := sup.WaitFor(wctx, func(st *api.Status) bool { return st.Serving != 0 }); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start scenario: wait for serving: %w", err)
	}
	return s, nil
}

// Stop stops the supervisor (its generations) and the healer, which saves
// its rules.
func (s *Service) Stop() error {
	s.cancel()
	return errors.Join(<-s.done, <-s.done)
}

// Crashes returns how many generations crashed so far.
func (s *Service) Crashes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.crashes)
}

// Request is one request of the load.
type Request struct {
	Method, Path, Body string
	Attack             bool
}

// Next returns worker w's i-th request: one in every attackEvery is the
// attack of kind; the others cycle through benign requests, several of
// them on the attacked route and close to the attack.
func Next(kind string, w, i, attackEvery int) Request {
	id := w*1_000_000 + i
	if attackEvery > 0 && i%attackEvery == w%attackEvery {
		if kind == Index {
			return Request{Method: "GET", Path: fmt.Sprintf("/items/%d?page=7", id), Attack: true}
		}
		return Request{Method: "POST", Path: fmt.Sprintf("/items/%d", id), Body: fmt.Sprintf(`{"name":"evil%d","tags":null,"labels":["x"]}`, id), Attack: true}
	}
	switch i % 6 {
	case 0:
		return Request{Method: "GET", Path: fmt.Sprintf("/items/%d", id)}
	case 1:
		return Request{Method: "GET", Path: fmt.Sprintf("/items/%d?page=%d", id, i%3)}
	case 2:
		return Request{Method: "POST", Path: fmt.Sprintf("/items/%d", id), Body: fmt.Sprintf(`{"name":"b%d","tags":{"k":"v"},"labels":["x","y"]}`, id)}
	case 3:
		return Request{Method: "POST", Path: fmt.Sprintf("/items/%d", id), Body: fmt.Sprintf(`{"name":"b%d","tags":null,"labels":[]}`, id)}
	case 4:
		return Request{Method: "POST", Path: fmt.Sprintf("/items/%d", id), Body: fmt.Sprintf(`{"name":"b%d","tags":{},"labels":["x"]}`, id)}
	}
	return Request{Method: "GET", Path: "/health"}
}

// Outcome of one request.
type Outcome struct {
	Status int
	Rule   string // X-Graft-Rule of the answer: sealed or guarded
	Err    error
}

// Do sends r with c.
func Do(ctx context.Context, c *http.Client, base string, r Request) Outcome {
	var body io.Reader
	if r.Body != "" {
		body = bytes.NewReader([]byte(r.Body))
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, base+r.Path, body)
	if err != nil {
		return Outcome{Err: err}
	}
	if r.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return Outcome{Err: err}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return Outcome{Status: resp.StatusCode, Rule: resp.Header.Get("X-Graft-Rule")}
}

// Client returns a keep-alive client for one worker.
func Client() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
}

// Run starts the service, runs the mixed load until BenignAfterSeal benign
// requests were answered after the seal (or Timeout), and stops it.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.AttackEvery <= 0 {
		cfg.AttackEvery = 10
	}
	if cfg.BenignAfterSeal <= 0 {
		cfg.BenignAfterSeal = 10_000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 90 * time.Second
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 2000
	}
	s, err := Start(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	res, err := s.Load(ctx, cfg)
	res.Listen = s.Sup.Addrs()[0]
	if serr := s.Stop(); err == nil && serr != nil {
		err = serr
	}
	return res, err
}

// Load runs the mixed load against s (see Run).
func (s *Service) Load(ctx context.Context, cfg Config) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var (
		res        Result
		mu         sync.Mutex
		afterSeal  atomic.Uint64
		wg         sync.WaitGroup
		start      = time.Now()
		total      atomic.Uint64
		isSealed   = func() bool { s.mu.Lock(); defer s.mu.Unlock(); return !s.sealed.IsZero() }
		sealedFlag atomic.Bool
	)
	if cfg.NoHeal {
		sealedFlag.Store(true) // count every benign request
	}
	if err := s.warmup(ctx, cfg); err != nil {
		return res, err
	}
	for w := range cfg.Workers {
		wg.Go(func() {
			c := Client()
			defer c.CloseIdleConnections()
			for i := 0; ctx.Err() == nil; i++ {
				if afterSeal.Load() >= uint64(cfg.BenignAfterSeal) {
					return
				}
				r := Next(cfg.Kind, w, i, cfg.AttackEvery)
				o := Do(ctx, c, s.URL, r)
				if ctx.Err() != nil {
					return // the run's deadline, not the service, ended it
				}
				total.Add(1)
				if !sealedFlag.Load() && isSealed() {
					sealedFlag.Store(true)
				}
				mu.Lock()
				if r.Attack {
					res.Attacks++
					if o.Rule != "" {
						res.AttacksSealed++
					}
				} else {
					res.Benign++
					switch {
					case o.Rule != "":
						res.BenignBlocked++
						res.Failures = appendMax(res.Failures, fmt.Sprintf("blocked by %s: %s %s %s", o.Rule, r.Method, r.Path, r.Body))
					case o.Err == nil && o.Status/100 == 2:
						res.BenignOK++
					default:
						res.BenignFailed++
						res.Failures = appendMax(res.Failures, fmt.Sprintf("%s %s: status %d err %v", r.Method, r.Path, o.Status, o.Err))
					}
					if sealedFlag.Load() {
						afterSeal.Add(1)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.RequestsPerSec = float64(total.Load()) / time.Since(start).Seconds()
	res.BenignAfterSeal = afterSeal.Load()
	s.mu.Lock()
	res.Crashes = len(s.crashes)
	if len(s.crashes) > 0 {
		res.FirstCrash = s.crashes[0]
	}
	res.Sealed, res.CrashesBeforeSeal = s.sealed, s.sealedAt
	s.mu.Unlock()
	if s.Heal == nil {
		return res, nil
	}
	res.Rules = s.Heal.Healer.List()
	if res.Sealed.IsZero() {
		return res, fmt.Errorf("scenario %s: no rule installed within %v (%s)", cfg.Kind, cfg.Timeout, res)
	}
	return res, nil
}

// warmup sends cfg.Warmup benign requests (not counted in the result).
func (s *Service) warmup(ctx context.Context, cfg Config) error {
	if cfg.Warmup <= 0 {
		return nil
	}
	var wg sync.WaitGroup
	var failed atomic.Uint64
	per := cfg.Warmup / cfg.Workers
	for w := range cfg.Workers {
		wg.Go(func() {
			c := Client()
			defer c.CloseIdleConnections()
			for i := range per {
				if o := Do(ctx, c, s.URL, Next(cfg.Kind, w+100, i, 0)); o.Err != nil || o.Status != 200 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("warmup: %d of %d benign requests failed before any attack", n, per*cfg.Workers)
	}
	return nil
}

func appendMax(s []string, v string) []string {
	if len(s) < 10 {
		s = append(s, v)
	}
	return s
}
