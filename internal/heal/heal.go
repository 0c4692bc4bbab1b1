// Package heal keeps a service up against inputs that crash it: it
// attributes each crash of a generation to the requests in flight, derives
// the narrowest rule that matches the crashing requests and no recent benign
// one, confirms it, and seals matching requests off at the proxy with a
// clear answer until a fix ships. Rules persist across supervisor restarts
// and expire.
package heal

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/heal/rule"
	"github.com/graftdev/graft/internal/proxy"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Healer; the zero value works (rules in memory only,
// 24h expiry, 503 answers).
type Options struct {
	Logger *slog.Logger // nil: log nothing
	// StorePath is the rule file; "" keeps rules in memory only.
	StorePath string
	// TTL is how long an installed rule lives; 0 means 24h, negative never.
	TTL time.Duration
	// Status is the sealed answer's status; 0 means 503.
	Status int
	// Window is how long a crash is remembered for confirmation; 0 means
	// 10 minutes. History bounds how many; 0 means 16.
	Window  time.Duration
	History int
	// Confirm is how many crashes of the same signature install a rule;
	// 0 means 2. A crash with a single request in flight always confirms.
	Confirm int
	// Registerer gets the metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

// Healer is the self-healing state of one supervisor.
type Healer struct {
	log     *slog.Logger
	opts    Options
	store   *store
	benign  *sample
	flights *tracker
	metrics *metrics

	hits atomic.Uint64 // total sealed requests, to know when to save
	// gate is closed when the crash being analysed has its rule (or none);
	// nil when no analysis runs. Check waits on it.
	gate atomic.Pointer[chan struct{}]

	mu      sync.Mutex
	crashes []crashRecord

	// profiles caches the features of sampled benign requests: most are
	// never looked at, and those that are are looked at again by the
	// next crash's analysis.
	profMu   sync.Mutex
	profiles map[*packed]*rule.Profile

	now func() time.Time // clock seam
}

type crashRecord struct {
	gen      int
	time     time.Time
	site     string
	suspects []*rule.Profile
}

// New loads the rule store and returns a Healer.
func New(opts Options) (*Healer, error) {
	if opts.TTL == 0 {
		opts.TTL = 24 * time.Hour
	}
	if opts.Status == 0 {
		opts.Status = http.StatusServiceUnavailable
	}
	if opts.Window <= 0 {
		opts.Window = 10 * time.Minute
	}
	if opts.History <= 0 {
		opts.History = 16
	}
	if opts.Confirm <= 0 {
		opts.Confirm = 2
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Healer{
		log:     log.With("component", "heal"),
		opts:    opts,
		store:   newStore(opts.StorePath),
		benign:  newSample(maxSampled, 256, 128),
		flights: newTracker(2 * time.Minute),
		now:     time.Now,
	}
	bad, err := h.store.load()
	if err != nil {
		return nil, fmt.Errorf("new healer: %w", err)
	}
	for _, e := range bad {
		h.log.Warn("skipping stored seal rule", "err", e)
	}
	h.metrics = newMetrics(opts.Registerer, func() float64 { return float64(h.store.set.Load().Len()) })
	if n := len(h.store.rules); n > 0 {
		h.log.Info("seal rules loaded", "rules", n, "path", opts.StorePath)
	}
	return h, nil
}

// maxSampled is how many benign requests the sample keeps over all routes.
const maxSampled = 1024

// maxGateWait bounds how long Check holds a request while a crash is
// analysed.
const maxGateWait = 2 * time.Second

// Check returns the sealed answer's status, headers and body for in, and
// true, when an installed rule matches it.
func (h *Healer) Check(in *rule.Input) (status int, hdr http.Header, body []byte, ok bool) {
	h.waitGate()
	return h.match(h.store.set.Load(), in)
}

// waitGate holds the caller while a crash is analysed: no generation
// serves then anyway, and letting a request through before the rule exists
// would feed the next generation the same crash.
func (h *Healer) waitGate() {
	g := h.gate.Load()
	if g == nil {
		return
	}
	t := time.NewTimer(maxGateWait)
	select {
	case <-*g:
	case <-t.C:
	}
	t.Stop()
}

func (h *Healer) match(set *rule.Set[*sealRule], in *rule.Input) (status int, hdr http.Header, body []byte, ok bool) {
	if set.Len() == 0 {
		return 0, nil, nil, false
	}
	now := h.now()
	e, ok := set.Match(in, now)
	if !ok {
		return 0, nil, nil, false
	}
	r := e.Value
	r.hits.Add(1)
	r.lastHit.Store(now.UnixNano())
	h.metrics.hits.Inc()
	h.hits.Add(1)
	h.log.Debug("sealed request", "rule", r.ID, "method", in.Method, "path", in.Path)
	hdr = http.Header{
		"Content-Type":  {"application/json"},
		"X-Graft-Rule":  {r.ID},
		"Cache-Control": {"no-store"},
	}
	return r.Status, hdr, r.answer, true
}

// NeedsBody reports whether some installed rule looks at request bodies.
func (h *Healer) NeedsBody() bool { return h.store.set.Load().NeedsBody() }

// begin records a request let through to the service (not sealed): a
// suspect if a generation crashes before end.
func (h *Healer) begin(r *proxy.Request) { h.flights.begin(r, h.now().UnixNano()) }

// end records that r got its answer. When benign is set (it was answered
// by the service without a 5xx), the request is kept as evidence against
// rules that would match it.
func (h *Healer) end(r *proxy.Request, benign bool) {
	h.flights.end(r.ID)
	if benign {
		h.benign.add(r)
	}
}

// Benign records a request that completed without crashing its generation,
// as evidence against rules that would match it.
func (h *Healer) Benign(in *rule.Input) {
	h.benign.add(&proxy.Request{ID: in.ID, Method: in.Method, Path: in.Path, RawQuery: in.RawQuery, Header: in.Header, Body: in.Body, BodyLen: in.BodyLen})
}

// CrashReport is what the supervisor knows about a generation's death.
type CrashReport struct {
	Gen      int
	Time     time.Time
	Err      string        // exit status or signal
	Stderr   []byte        // tail of its stderr
	InFlight []*rule.Input // requests in flight to it when it died
}

// Crash attributes a crash to its in-flight requests and installs a rule
// when the confirmation policy is met: the same signature (crash site and
// route) crashed Confirm times, or the crash had a single request in flight.
// It returns the rules it installed.
func (h *Healer) Crash(c CrashReport) []api.SealRule {
	gate := make(chan struct{})
	h.gate.Store(&gate)
	defer func() {
		h.gate.Store(nil)
		close(gate)
	}()
	if c.Time.IsZero() {
		c.Time = h.now()
	}
	site := CrashSite(c.Stderr)
	if site == "" {
		site = c.Err
	}
	rec := crashRecord{gen: c.Gen, time: c.Time, site: site}
	inProxy := map[uint64]bool{}
	for _, in := range c.InFlight {
		inProxy[in.ID] = true
	}
	seen := map[uint64]bool{}
	inFlight := c.InFlight
	for _, r := range h.flights.suspects(c.Time) {
		inFlight = append(inFlight, toInput(r))
	}
	for _, in := range inFlight {
		if in.ID != 0 && seen[in.ID] {
			continue
		}
		seen[in.ID] = true
		rec.suspects = append(rec.suspects, rule.NewProfile(in))
	}
	h.metrics.crashes.Inc()
	h.metrics.suspects.Add(float64(len(rec.suspects)))
	h.log.Info("crash attributed", "gen", c.Gen, "site", site, "suspects", len(rec.suspects),
		"proxy_in_flight", len(c.InFlight), "benign_sample", h.benign.len(), "err", c.Err)
	if len(rec.suspects) == 0 {
		h.metrics.unattributed.Inc()
	}

	// A request admitted just before a rule was installed (in flight, or
	// waiting for the restart) can still crash the next generation; the
	// rule explains that crash, and deriving from it would only blame its
	// innocent neighbours.
	installed := h.store.set.Load()
	for _, s := range rec.suspects {
		// Only a request really sent to this generation explains its
		// crash: one the proxy lists, or one not blamed before (the
		// tracker keeps requests that never got an answer for a while).
		if !inProxy[s.Input().ID] && h.flights.blamed(s.Input().ID) {
			continue
		}
		if e, ok := installed.Match(s.Input(), c.Time); ok {
			h.log.Info("crash explained by an installed rule (request admitted before it was installed)", "gen", c.Gen, "rule", e.Value.ID)
			return nil
		}
	}

	h.mu.Lock()
	cutoff := c.Time.Add(-h.opts.Window)
	kept := h.crashes[:0]
	for _, old := range h.crashes {
		if old.time.After(cutoff) {
			kept = append(kept, old)
		}
	}
	h.crashes = append(kept, rec)
	if len(h.crashes) > h.opts.History {
		h.crashes = h.crashes[len(h.crashes)-h.opts.History:]
	}
	history := append([]crashRecord(nil), h.crashes...)
	h.mu.Unlock()

	m, why := h.propose(history)
	if m == nil {
		if why != "" {
			h.log.Info("no rule yet", "gen", c.Gen, "why", why)
		}
		return nil
	}
	r, _, err := h.install(m, "auto", 0, why, h.opts.TTL)
	if err != nil {
		h.log.Error("install seal rule", "rule", m.String(), "err", err)
		return nil
	}
	return []api.SealRule{r}
}

// propose applies the confirmation policy to the crash history (latest
// last) and returns the rule to install and why, or nil and why not.
func (h *Healer) propose(history []crashRecord) (*rule.Match, string) {
	last := history[len(history)-1]
	if len(last.suspects) == 0 {
		return nil, "no request was in flight"
	}
	var single *rule.Match
	var singleWhy string
	if len(last.suspects) == 1 {
		s := last.suspects[0]
		m, err := rule.Derive([]*rule.Profile{s}, h.benignFor(s.Head()))
		if err != nil {
			return nil, err.Error()
		}
		single = m
		singleWhy = fmt.Sprintf("generation %d crashed (%s) with this request the only one in flight", last.gen, last.site)
	}
	// Find Confirm-1 earlier crashes of the same site, and the group of
	// one suspect per crash whose generalization is narrowest and still
	// spares every benign request seen.
	var same []crashRecord
	for i := len(history) - 2; i >= 0; i-- {
		if history[i].site == last.site && len(history[i].suspects) > 0 {
			same = append(same, history[i])
		}
	}
	need := h.opts.Confirm - 1
	if len(same) < need {
		if single != nil {
			return single, singleWhy
		}
		return nil, fmt.Sprintf("%d requests in flight; waiting for the same crash (%s) again to confirm", len(last.suspects), last.site)
	}
	// When two candidate rules from different groups each miss the
	// other's requests (a benign request happened to be in flight at both
	// crashes, beside the crasher), the crashes do not say which is the
	// culprit: take one more earlier crash into the intersection, or wait
	// for the next crash.
	// Partners: with the default Confirm of 2, every earlier crash of the
	// site pairs with the last one; with more, the most recent ones.
	var partners [][]crashRecord
	if need == 1 {
		for _, e := range same {
			partners = append(partners, []crashRecord{e})
		}
	} else {
		partners = append(partners, same[:need])
	}
	all := append([]crashRecord{last}, same...)
	best, bestGens, ambiguous := h.bestGroup(last, partners, all, false)
	if best == nil {
		// Only the same request, retried, in all crashes: it crashed
		// every one of them, so its own narrow rule is confirmed.
		best, bestGens, ambiguous = h.bestGroup(last, partners, all, true)
	}
	if ambiguous {
		return nil, fmt.Sprintf("crash (%s) repeated, but several unrelated requests were in flight each time; waiting for another crash to tell them apart", last.site)
	}
	if best == nil && single != nil {
		return single, singleWhy
	}
	if best == nil {
		return nil, fmt.Sprintf("crash (%s) repeated, but no rule separates its in-flight requests from benign ones", last.site)
	}
	gens := make([]string, len(bestGens))
	for i, g := range bestGens {
		gens[i] = fmt.Sprint(g)
	}
	return best, fmt.Sprintf("generations %s crashed (%s) with a matching request in flight", strings.Join(gens, ", "), last.site)
}

// bestGroup tries every group of one suspect from the last crash and one
// from each crash of a partner set, whose routes agree, and returns the
// narrowest rule that spares every benign request seen (generalized over
// the variants of the same input), the generations it is drawn from, and
// whether the crashes leave another explanation as likely: a candidate
// from requests disjoint from the rule's, not covered by it, and matching
// suspects in as many of the crashes (all) as the rule does. Unless sameOK,
// a group may not hold the same request twice.
func (h *Healer) bestGroup(last crashRecord, partners [][]crashRecord, all []crashRecord, sameOK bool) (*rule.Match, []int, bool) {
	type candidate struct {
		m     *rule.Match
		group []*rule.Profile
		gens  []int
	}
	var cands []candidate
	benign := map[rule.Head][]*rule.Profile{}
	for _, same := range partners {
		for _, s := range last.suspects {
			groups := [][]*rule.Profile{{s}}
			for _, old := range same {
				var next [][]*rule.Profile
				for _, g := range groups {
					for _, o := range old.suspects {
						if o.Head() != s.Head() || (!sameOK && containsSame(g, o)) {
							continue
						}
						next = append(next, append(append([]*rule.Profile(nil), g...), o))
					}
				}
				groups = next
			}
			gens := []int{last.gen}
			for _, old := range same {
				gens = append(gens, old.gen)
			}
			for _, g := range groups {
				bs, ok := benign[s.Head()]
				if !ok {
					bs = h.benignFor(s.Head())
					benign[s.Head()] = bs
				}
				m, err := rule.Derive(g, bs)
				if err != nil {
					continue
				}
				cands = append(cands, candidate{m, g, gens})
			}
		}
	}
	if len(cands) == 0 {
		return nil, nil, false
	}
	covers := func(m *rule.Match, g []*rule.Profile) bool {
		for _, p := range g {
			if !p.Covers(m) {
				return false
			}
		}
		return true
	}
	support := func(m *rule.Match) int {
		n := 0
		for _, c := range all {
			for _, p := range c.suspects {
				if p.Covers(m) {
					n++
					break
				}
			}
		}
		return n
	}
	// The rule is the best-supported, then narrowest candidate, merged
	// with every candidate of the same input shape that it can be
	// generalized with while still sparing every benign request: those are
	// variants of the same crasher (ids, names of other lengths), and the
	// merged rule also catches the variants not yet seen.
	// plausible: the rule still spares every benign request when its exact
	// path is widened to the route template. A candidate that is an
	// ordinary request of a busy route (the same shape and values succeed
	// all the time, only the id differs) is an unlikely crasher, typically
	// a bystander retried into the next generation.
	sup := make(map[*rule.Match]int, len(cands))
	plausible := make(map[*rule.Match]bool, len(cands))
	for _, c := range cands {
		sup[c.m] = support(c.m)
		wide := c.m.WithPath(c.group[0].Head().Template)
		plausible[c.m] = true
		for _, b := range benign[c.group[0].Head()] {
			if b.Covers(wide) {
				plausible[c.m] = false
				break
			}
		}
	}
	slices.SortStableFunc(cands, func(x, y candidate) int {
		if d := sup[y.m] - sup[x.m]; d != 0 {
			return d
		}
		if d := b2i(plausible[y.m]) - b2i(plausible[x.m]); d != 0 {
			return d
		}
		if d := b2i(y.m.Typed()) - b2i(x.m.Typed()); d != 0 {
			return d
		}
		return narrowness(y.m) - narrowness(x.m)
	})
	best, group, gens := cands[0].m, cands[0].group, cands[0].gens
	for _, c := range cands[1:] {
		if c.group[0].Head() != group[0].Head() || covers(best, c.group) || c.m.Shape() != best.Shape() {
			continue
		}
		merged := append(append([]*rule.Profile(nil), group...), c.group...)
		if m, err := rule.Derive(merged, benign[c.group[0].Head()]); err == nil {
			best, group = m, merged
		}
	}
	bestSupport := support(best)
	ambiguous := false
	for _, c := range cands[1:] {
		if covers(best, c.group) || covers(c.m, group) || overlaps(c.group, group) || sup[c.m] < bestSupport ||
			(plausible[cands[0].m] && !plausible[c.m]) {
			continue
		}
		ambiguous = true
		h.log.Info("ambiguous crash attribution", "rule", best.String(), "other", c.m.String(), "crashes", bestSupport)
		break
	}
	return best, gens, ambiguous
}

func overlaps(a, b []*rule.Profile) bool {
	for _, p := range a {
		if slices.Contains(b, p) {
			return true
		}
	}
	return false
}

// containsSame reports whether g holds q or an identical request: the
// proxy's retry (same id) or the client's (a new id, same method, target
// and body). Two copies of one request are one piece of evidence, not two.
func containsSame(g []*rule.Profile, q *rule.Profile) bool {
	for _, p := range g {
		a, b := p.Input(), q.Input()
		if b.ID != 0 && a.ID == b.ID {
			return true
		}
		if a.Method == b.Method && a.Path == b.Path && a.RawQuery == b.RawQuery && string(a.Body) == string(b.Body) {
			return true
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// narrowness orders derived rules: more predicates is narrower, and a rule
// on an exact path is narrower than one on its route template.
func narrowness(m *rule.Match) int {
	n := 2 * m.Preds()
	if !strings.Contains(m.Path, "{") {
		n++
	}
	return n
}

func (h *Healer) benignFor(hd rule.Head) []*rule.Profile {
	h.profMu.Lock()
	defer h.profMu.Unlock()
	if len(h.profiles) > 4*maxSampled {
		h.profiles = nil // requests long gone from the sample
	}
	if h.profiles == nil {
		h.profiles = map[*packed]*rule.Profile{}
	}
	var out []*rule.Profile
	for _, p := range h.benign.snapshot(hd) {
		if prof := h.profiles[p]; prof != nil {
			out = append(out, prof)
			continue
		}
		// Only requests on the same route can be matched by a rule derived
		// for it; skip unpacking and the JSON walk for the others.
		method, path, err := p.head()
		if err != nil || method != hd.Method && !(hd.Method == "GET" && method == "HEAD") || rule.Template(path) != hd.Template {
			continue
		}
		in, err := p.unpack()
		if err != nil {
			h.log.Warn("skipping benign request", "err", err)
			continue
		}
		prof := rule.NewProfile(in)
		h.profiles[p] = prof
		out = append(out, prof)
	}
	return out
}

// Add installs a rule by hand.
func (h *Healer) Add(req api.SealAddRequest) (api.SealRule, bool, error) {
	m, err := rule.Parse(req.Match)
	if err != nil {
		return api.SealRule{}, false, err
	}
	ttl := h.opts.TTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return api.SealRule{}, false, fmt.Errorf("add seal rule: ttl: %w", err)
		}
		ttl = d
		if d == 0 {
			ttl = -1
		}
	}
	reason := req.Reason
	if reason == "" {
		reason = "added by hand"
	}
	return h.install(m, "manual", req.Status, reason, ttl)
}

func (h *Healer) install(m *rule.Match, source string, status int, reason string, ttl time.Duration) (api.SealRule, bool, error) {
	if status == 0 {
		status = h.opts.Status
	}
	now := h.now().UTC()
	w := api.SealRule{
		Match:   m.String(),
		Action:  api.SealActionReject,
		Status:  status,
		Reason:  reason,
		Source:  source,
		Created: now,
	}
	if ttl > 0 {
		w.Expires = now.Add(ttl)
	}
	r, err := compile(w)
	if err != nil {
		return api.SealRule{}, false, fmt.Errorf("install seal rule: %w", err)
	}
	got, existed, err := h.store.add(r)
	if err != nil {
		return api.SealRule{}, false, fmt.Errorf("install seal rule: %w", err)
	}
	if !existed {
		h.metrics.installs.WithLabelValues(source).Inc()
		h.log.Info("seal rule installed", "rule", got.ID, "match", got.Match, "source", source, "reason", reason, "expires", w.Expires)
	}
	return got.wire(), existed, nil
}

// Remove deletes a rule; ok is false when no rule has that id.
func (h *Healer) Remove(id string) (ok bool, err error) {
	r, err := h.store.remove(id)
	if r == nil {
		return false, err
	}
	h.metrics.removed.Inc()
	h.log.Info("seal rule removed", "rule", id, "match", r.Match, "hits", r.hits.Load())
	return true, err
}

// List returns the installed rules, oldest first.
func (h *Healer) List() []api.SealRule { return h.store.list() }

// Run expires rules and saves hit counts until ctx ends, then saves once
// more.
func (h *Healer) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastFlush time.Time
	var lastHits uint64
	for {
		select {
		case <-ctx.Done():
			if err := h.store.flush(); err != nil {
				h.log.Warn("save seal rules", "err", err)
			}
			return nil
		case <-tick.C:
		}
		h.expire()
		// Hit counts change on every sealed request; write them at most
		// every 10s, and only when they changed.
		if hits := h.hits.Load(); hits != lastHits && time.Since(lastFlush) > 10*time.Second {
			lastHits, lastFlush = hits, time.Now()
			if err := h.store.flush(); err != nil {
				h.log.Warn("save seal rules", "err", err)
			}
		}
	}
}

func (h *Healer) expire() {
	gone, err := h.store.expire(h.now())
	for _, r := range gone {
		h.metrics.expired.Inc()
		h.log.Info("seal rule expired", "rule", r.ID, "match", r.Match, "hits", r.hits.Load())
	}
	if err != nil {
		h.log.Warn("save seal rules", "err", err)
	}
}
