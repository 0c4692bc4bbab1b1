// Package guard holds graft's request-level latent guards: checks shipped
// switched off (maximum body size, JSON depth, header size, path and
// query-parameter patterns) that an operator switches on the day a
// vulnerability is known, by a signed alert verified against a pinned key
// or through the admin API, without a new build of the service.
package guard

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/prometheus/client_golang/prometheus"
)

// Request is what a guard looks at.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte // possibly a prefix
	BodyLen  int64  // full length when known, -1 otherwise
}

// kind describes one guard: its id, defaults and check.
type kind struct {
	id, desc string
	defaults map[string]string
	status   int
	// compile validates params and returns the check; the check returns a
	// reason when the request must be refused.
	compile func(params map[string]string) (func(*Request) string, error)
}

var kinds = []kind{
	{
		id: "guard.body_size", desc: "refuse request bodies longer than max bytes",
		defaults: map[string]string{"max": "1048576"}, status: http.StatusRequestEntityTooLarge,
		compile: func(p map[string]string) (func(*Request) string, error) {
			max, err := intParam(p, "max")
			if err != nil {
				return nil, err
			}
			return func(r *Request) string {
				n := r.BodyLen
				if cl, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64); err == nil && cl > n {
					n = cl
				}
				if int64(len(r.Body)) > n {
					n = int64(len(r.Body))
				}
				if n > max {
					return fmt.Sprintf("body of %d bytes exceeds %d", n, max)
				}
				return ""
			}, nil
		},
	},
	{
		id: "guard.json_depth", desc: "refuse JSON bodies nested deeper than max",
		defaults: map[string]string{"max": "64"}, status: http.StatusBadRequest,
		compile: func(p map[string]string) (func(*Request) string, error) {
			max, err := intParam(p, "max")
			if err != nil {
				return nil, err
			}
			return func(r *Request) string {
				if d := jsonDepth(r.Body, int(max)); d > int(max) {
					return fmt.Sprintf("JSON nested deeper than %d", max)
				}
				return ""
			}, nil
		},
	},
	{
		id: "guard.header_size", desc: "refuse requests whose headers total more than max bytes",
		defaults: map[string]string{"max": "16384"}, status: http.StatusRequestHeaderFieldsTooLarge,
		compile: func(p map[string]string) (func(*Request) string, error) {
			max, err := intParam(p, "max")
			if err != nil {
				return nil, err
			}
			return func(r *Request) string {
				var n int64
				for k, vs := range r.Header {
					for _, v := range vs {
						n += int64(len(k) + len(v) + 4) // "K: V\r\n"
					}
				}
				if n > max {
					return fmt.Sprintf("headers of %d bytes exceed %d", n, max)
				}
				return ""
			}, nil
		},
	},
	{
		id: "guard.path_pattern", desc: "refuse requests whose path matches the regexp deny",
		status: http.StatusBadRequest,
		compile: func(p map[string]string) (func(*Request) string, error) {
			re, err := reParam(p, "deny")
			if err != nil {
				return nil, err
			}
			return func(r *Request) string {
				if re.MatchString(r.Path) {
					return "path matches " + re.String()
				}
				return ""
			}, nil
		},
	},
	{
		id: "guard.query_pattern", desc: "refuse requests with a query value (of parameter name, or any) matching the regexp deny",
		status: http.StatusBadRequest,
		compile: func(p map[string]string) (func(*Request) string, error) {
			re, err := reParam(p, "deny")
			if err != nil {
				return nil, err
			}
			name := p["name"]
			return func(r *Request) string {
				if r.RawQuery == "" {
					return ""
				}
				q, _ := url.ParseQuery(r.RawQuery) // keeps the pairs that parse
				for k, vs := range q {
					if name != "" && k != name {
						continue
					}
					for _, v := range vs {
						if re.MatchString(v) {
							return fmt.Sprintf("query parameter %q matches %s", k, re.String())
						}
					}
				}
				return ""
			}, nil
		},
	},
}

func intParam(p map[string]string, key string) (int64, error) {
	n, err := strconv.ParseInt(p[key], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("parameter %s=%q: want a non-negative integer", key, p[key])
	}
	return n, nil
}

func reParam(p map[string]string, key string) (*regexp.Regexp, error) {
	s, ok := p[key]
	if !ok || s == "" {
		return nil, fmt.Errorf("parameter %s: required (a Go regexp)", key)
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("parameter %s: %w", key, err)
	}
	return re, nil
}

// jsonDepth returns the nesting depth of the JSON text in b, scanning at
// most until it passes limit; it needs no complete or valid document, so a
// body prefix too deep is caught without parsing it.
func jsonDepth(b []byte, limit int) int {
	depth, max := 0, 0
	inStr, esc := false, false
	for _, c := range b {
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case inStr && c == '"':
			inStr = false
		case inStr:
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				max = depth
				if max > limit {
					return max
				}
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return max
}

// ErrUnknown marks a guard id that does not exist.
var ErrUnknown = errors.New("unknown guard")

// ErrNoKey is returned for alerts when no public key is pinned.
var ErrNoKey = errors.New("no alert key pinned (graft run --alert-key FILE)")

// Options configures a Set; the zero value works (alerts refused: no key).
type Options struct {
	Logger     *slog.Logger
	Key        ed25519.PublicKey // pinned alert key
	Registerer prometheus.Registerer
}

// Set is the guards of one supervisor. All start switched off.
type Set struct {
	log  *slog.Logger
	key  ed25519.PublicKey
	now  func() time.Time
	mu   sync.Mutex // serializes changes
	on   atomic.Pointer[[]*active]
	info map[string]*state

	blocked *prometheus.CounterVec
}

type state struct {
	kind    *kind
	on      bool
	params  map[string]string
	alert   string
	blocked atomic.Uint64
}

type active struct {
	st    *state
	check func(*Request) string
}

// New returns a guard set with every guard off.
func New(opts Options) *Set {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Set{log: log.With("component", "guard"), key: opts.Key, now: time.Now, info: map[string]*state{}}
	for i := range kinds {
		s.info[kinds[i].id] = &state{kind: &kinds[i], params: kinds[i].defaults}
	}
	s.on.Store(&[]*active{})
	s.blocked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "graft_guard_blocked_total", Help: "Requests refused by a latent guard.",
	}, []string{"guard"})
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.blocked, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "graft_guards_on", Help: "Latent guards switched on.",
		}, func() float64 { return float64(len(*s.on.Load())) }))
	}
	return s
}

// Check runs the guards that are on. It returns ok false with the answer
// when one refuses the request. With every guard off it costs one atomic
// load.
func (s *Set) Check(r *Request) (status int, hdr http.Header, body []byte, ok bool) {
	on := *s.on.Load()
	for _, a := range on {
		if why := a.check(r); why != "" {
			a.st.blocked.Add(1)
			s.blocked.WithLabelValues(a.st.kind.id).Inc()
			s.log.Debug("guard refused request", "guard", a.st.kind.id, "method", r.Method, "path", r.Path, "why", why)
			b, _ := json.Marshal(api.SealAnswer{Version: api.Version, Error: "request refused by graft " + a.st.kind.id + ": " + why, Rule: a.st.kind.id})
			return a.st.kind.status, http.Header{"Content-Type": {"application/json"}, "X-Graft-Rule": {a.st.kind.id}}, append(b, '\n'), false
		}
	}
	return 0, nil, nil, true
}

// Active reports whether some guard is on, so that callers build a
// Request only then.
func (s *Set) Active() bool { return len(*s.on.Load()) > 0 }

// List returns every guard with its state, sorted by id.
func (s *Set) List() []api.Guard {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]api.Guard, 0, len(s.info))
	for id, st := range s.info {
		out = append(out, api.Guard{ID: id, Description: st.kind.desc, On: st.on, Params: clone(st.params), Alert: st.alert, Blocked: st.blocked.Load()})
	}
	slices.SortFunc(out, func(a, b api.Guard) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Set switches guard id on (with params over its defaults) or off.
func (s *Set) Set(id string, on bool, params map[string]string) error {
	return s.set(id, on, params, "")
}

func (s *Set) set(id string, on bool, params map[string]string, alert string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.info[id]
	if st == nil {
		return fmt.Errorf("switch guard %q: %w", id, ErrUnknown)
	}
	if !on {
		st.on, st.alert = false, ""
		s.publishLocked()
		s.log.Info("guard off", "guard", id)
		return nil
	}
	p := clone(st.kind.defaults)
	for k, v := range params {
		p[k] = v
	}
	if _, err := st.kind.compile(p); err != nil {
		return fmt.Errorf("switch guard %s on: %w", id, err)
	}
	st.on, st.params, st.alert = true, p, alert
	s.publishLocked()
	s.log.Info("guard on", "guard", id, "params", p, "alert", alert)
	return nil
}

func (s *Set) publishLocked() {
	var on []*active
	ids := make([]string, 0, len(s.info))
	for id := range s.info {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st := s.info[id]
		if !st.on {
			continue
		}
		check, err := st.kind.compile(st.params)
		if err != nil {
			continue // validated in set
		}
		on = append(on, &active{st: st, check: check})
	}
	s.on.Store(&on)
}

// Apply verifies a signed alert against the pinned key and switches on the
// guards it names. Ids that are not guards (latent check sites of a
// `graft build` manifest) are returned in others for their own provider.
// Nothing is switched on unless every guard in the alert can be.
func (s *Set) Apply(a *api.SignedAlert) (body *api.AlertBody, others []string, err error) {
	if len(s.key) == 0 {
		return nil, nil, fmt.Errorf("apply alert: %w", ErrNoKey)
	}
	body, err = a.Verify(s.key, s.now())
	if err != nil {
		return nil, nil, fmt.Errorf("apply alert: %w", err)
	}
	var mine []api.AlertCheck
	for _, c := range body.Checks {
		if strings.HasPrefix(c.ID, "guard.") {
			mine = append(mine, c)
		} else {
			others = append(others, c.ID)
		}
	}
	// Validate all before switching any on.
	for _, c := range mine {
		st := s.info[c.ID]
		if st == nil {
			return nil, nil, fmt.Errorf("apply alert %s: %q: %w", body.ID, c.ID, ErrUnknown)
		}
		p := clone(st.kind.defaults)
		for k, v := range c.Params {
			p[k] = v
		}
		if _, err := st.kind.compile(p); err != nil {
			return nil, nil, fmt.Errorf("apply alert %s: %s: %w", body.ID, c.ID, err)
		}
	}
	for _, c := range mine {
		if err := s.set(c.ID, true, c.Params, body.ID); err != nil {
			return nil, nil, err
		}
	}
	return body, others, nil
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
