// Package checks is the supervisor side of `graft checks`: it mounts
// GET/POST /v1/checks on the supervisor's admin API, lists and switches the
// latent check sites and patch points of the serving generation (through
// its rt admin socket) together with other providers' checks (request-level
// guards), verifies signed alerts that switch checks on, and keeps what was
// switched on for every later generation (GRAFT_SITES, GRAFT_SEALED).
package checks

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/adminhttp"
)

// Provider is a source of switchable checks besides the program's rt, such
// as the supervisor's request-level guards.
type Provider interface {
	// List returns the provider's checks.
	List(ctx context.Context) ([]api.Check, error)
	// Set switches check id on or off; it returns ErrUnknown for an id it
	// does not hold.
	Set(ctx context.Context, id string, on bool, params map[string]string) error
}

// ErrUnknown is returned by Provider.Set for ids the provider does not hold.
var ErrUnknown = errors.New("unknown check id")

// Supervisor is what checks needs of internal/supervisor.
type Supervisor interface {
	Handle(pattern string, h http.Handler)
	Serving() (gen int, rtSocket string)
	AddEnv(f func(gen int) []string)
	Event(gen int, kind, msg string)
}

// Options configure Attach; the zero value works (no providers, alerts
// refused).
type Options struct {
	Providers []Provider
	AlertKey  ed25519.PublicKey // pinned key for alerts; nil refuses alerts
	Logger    *slog.Logger
	Now       func() time.Time
}

// Service serves /v1/checks.
type Service struct {
	sup  Supervisor
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	// on holds the rt ids switched on through the supervisor (→ limit),
	// sealed the points sealed through it; both are passed to every new
	// generation.
	on     map[string]int64
	sealed map[string]bool
}

// Attach mounts the checks API on sup and makes new generations start with
// the checks switched on so far.
func Attach(sup Supervisor, opts Options) *Service {
	s := &Service{sup: sup, opts: opts, on: map[string]int64{}, sealed: map[string]bool{}}
	s.log = opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.log = s.log.With("component", "checks")
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	sup.Handle("GET /v1/checks", http.HandlerFunc(s.handleList))
	sup.Handle("POST /v1/checks", http.HandlerFunc(s.handleSet))
	sup.AddEnv(s.env)
	return s
}

func (s *Service) env(gen int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if len(s.on) > 0 {
		ids := make([]string, 0, len(s.on))
		for id, lim := range s.on {
			if lim > 0 {
				id += "=" + strconv.FormatInt(lim, 10)
			}
			ids = append(ids, id)
		}
		sort.Strings(ids)
		out = append(out, "GRAFT_SITES="+strings.Join(ids, ","))
	}
	return out
}

// List merges the serving generation's rt checks and every provider's.
func (s *Service) List(ctx context.Context) (*api.CheckList, error) {
	l := &api.CheckList{Version: api.Version, Checks: []api.Check{}}
	if _, sock := s.sup.Serving(); sock != "" {
		resp, err := RT(sock).Do(ctx, api.RTRequest{Op: "list"})
		if err != nil {
			s.log.Debug("rt list", "err", err)
		} else if resp.List != nil {
			l.Checks = append(l.Checks, resp.List.Checks...)
			l.Stopped, l.SealedCalls, l.Recovered = resp.List.Stopped, resp.List.SealedCalls, resp.List.Recovered
		}
	}
	for _, p := range s.opts.Providers {
		cs, err := p.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("list checks: %w", err)
		}
		l.Checks = append(l.Checks, cs...)
	}
	return l, nil
}

// Set switches checks; ids no provider holds go to the serving rt.
func (s *Service) Set(ctx context.Context, req api.ChecksSet) (*api.ChecksResult, error) {
	type item struct {
		id     string
		params map[string]string
	}
	var items []item
	on := req.On
	source := "admin"
	if req.Alert != nil {
		if s.opts.AlertKey == nil {
			return nil, errors.New("switch checks: no alert key pinned (graft run --alert-key)")
		}
		body, err := req.Alert.Verify(s.opts.AlertKey, s.opts.Now())
		if err != nil {
			return nil, fmt.Errorf("switch checks: %w", err)
		}
		on = true
		source = "alert " + body.ID
		for _, c := range body.Checks {
			items = append(items, item{c.ID, c.Params})
		}
	}
	for _, id := range req.IDs {
		var p map[string]string
		if req.Limit > 0 {
			p = map[string]string{"limit": strconv.FormatInt(req.Limit, 10)}
		}
		items = append(items, item{id, p})
	}
	if len(items) == 0 {
		return nil, errors.New("switch checks: no ids")
	}
	res := &api.ChecksResult{Version: api.Version, Changed: []string{}}
	var rest []item
	for _, it := range items {
		handled := false
		for _, p := range s.opts.Providers {
			err := p.Set(ctx, it.id, on, it.params)
			if errors.Is(err, ErrUnknown) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("switch %s: %w", it.id, err)
			}
			handled = true
			res.Changed = append(res.Changed, it.id)
			break
		}
		if !handled {
			rest = append(rest, it)
		}
	}
	if len(rest) > 0 {
		gen, sock := s.sup.Serving()
		for _, it := range rest {
			var limit int64
			if v := it.params["limit"]; v != "" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("switch %s: limit %q: %w", it.id, v, err)
				}
				limit = n
			}
			known := false
			if sock != "" {
				op := "off"
				if on {
					op = "on"
				}
				resp, err := RT(sock).Do(ctx, api.RTRequest{Op: op, IDs: []string{it.id}, Limit: limit})
				if err != nil {
					return nil, fmt.Errorf("switch %s: generation %d: %w", it.id, gen, err)
				}
				known = len(resp.Changed) > 0
			}
			if !known {
				res.Unknown = append(res.Unknown, it.id)
				continue
			}
			res.Changed = append(res.Changed, it.id)
			s.mu.Lock()
			if on {
				s.on[it.id] = limit
			} else {
				delete(s.on, it.id)
			}
			s.mu.Unlock()
		}
		if len(res.Changed) > 0 {
			s.sup.Event(gen, "checks", fmt.Sprintf("%s switched %s by %s: %s", plural(len(res.Changed), "check"), onOff(on), source, strings.Join(res.Changed, ", ")))
		}
	}
	return res, nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	l, err := s.List(r.Context())
	if err != nil {
		adminhttp.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	adminhttp.WriteJSON(w, http.StatusOK, l)
}

func (s *Service) handleSet(w http.ResponseWriter, r *http.Request) {
	var req api.ChecksSet
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		adminhttp.WriteError(w, http.StatusBadRequest, fmt.Errorf("decode request: %w", err))
		return
	}
	res, err := s.Set(r.Context(), req)
	if err != nil {
		adminhttp.WriteError(w, http.StatusBadRequest, err)
		return
	}
	status := http.StatusOK
	if len(res.Changed) == 0 {
		status = http.StatusNotFound
		adminhttp.WriteError(w, status, fmt.Errorf("no such checks: %s", strings.Join(res.Unknown, ", ")))
		return
	}
	adminhttp.WriteJSON(w, status, res)
}
