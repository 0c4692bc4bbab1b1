package heal

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/adminhttp"
	"github.com/graftdev/graft/internal/guard"
	"github.com/graftdev/graft/internal/heal/rule"
	"github.com/graftdev/graft/internal/proxy"
	"github.com/graftdev/graft/internal/supervisor"
	"github.com/prometheus/client_golang/prometheus"
)

// AttachOptions configures Attach.
type AttachOptions struct {
	Options
	// AlertKey is the pinned public key that alerts switching guards on
	// must be signed with (graft run --alert-key); nil refuses alerts.
	AlertKey ed25519.PublicKey
	// KeepHooks leaves the proxy's hooks alone: the caller composes
	// Attached.Hooks with others (shadowing's Observe) and sets them.
	KeepHooks bool
}

// Attached is self-healing wired into one supervisor.
type Attached struct {
	Healer *Healer
	Guards *guard.Set
	sup    *supervisor.Supervisor
}

// Attach wires self-healing into sup before it runs: crash attribution
// (OnCrash), seal rules and latent guards on the proxy's request path
// (proxy mode), the admin routes /v1/seal and /v1/guards, and metrics.
// Run must run beside sup.Run for rule expiry.
func Attach(sup *supervisor.Supervisor, opts AttachOptions) (*Attached, error) {
	if opts.Logger == nil {
		opts.Logger = sup.Logger()
	}
	opts.Registerer = sup.Registry()
	h, err := New(opts.Options)
	if err != nil {
		return nil, fmt.Errorf("attach self-healing: %w", err)
	}
	a := &Attached{
		Healer: h,
		Guards: guard.New(guard.Options{Logger: opts.Logger, Key: opts.AlertKey, Registerer: sup.Registry()}),
		sup:    sup,
	}
	sup.OnCrash(a.onCrash)
	a.routes()
	if p := sup.Proxy(); p != nil {
		sup.Registry().MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "graft_heal_fallbacks_total",
				Help: "Idempotent requests that failed on the new generation during probation and were retried on the parked one.",
			}, func() float64 { return float64(p.Stats().Fallbacks) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "graft_heal_retries_total",
				Help: "Requests sent a second time (to a replacement or the fallback).",
			}, func() float64 { return float64(p.Stats().Retries) }),
		)
		if !opts.KeepHooks {
			p.SetHooks(a.Hooks())
		}
	}
	return a, nil
}

// CheckProvider returns the guards as a checks.Provider, for the
// supervisor's /v1/checks service (graft checks list|on|off).
func (a *Attached) CheckProvider() guard.Provider { return guard.Provider{Guards: a.Guards} }

// Run expires rules and saves hit counts until ctx ends.
func (a *Attached) Run(ctx context.Context) error { return a.Healer.Run(ctx) }

// Hooks returns the proxy hooks of self-healing: Admit answers sealed and
// guarded requests; Complete records completions (the benign evidence).
// To combine with other hooks use proxy.Compose.
func (a *Attached) Hooks() proxy.Hooks {
	return proxy.Hooks{Admit: a.Admit, InspectBody: true, Complete: a.Complete}
}

// Admit is the proxy's Admit hook. While no guard is on, no seal rule is
// installed and no crash is being analysed, it lets the request go on
// without the proxy copying it: nothing is there to match it against, and
// should its generation crash, the proxy's in-flight list
// (Backend.InFlight, the crash report's InFlight) has it. Otherwise the
// request is copied and handled as Inspect does.
func (a *Attached) Admit(v *proxy.View) *proxy.Answer {
	h := a.Healer
	if !a.Guards.Active() && h.gate.Load() == nil && h.store.set.Load().Len() == 0 {
		return nil
	}
	return a.Inspect(v.Request())
}

// Complete is the proxy's Complete hook: it ends the request's tracking
// and lets a benign one (answered by a generation without a 5xx) into the
// sample, copied only when the sample takes it (sample.admit).
func (a *Attached) Complete(v *proxy.View, resp *proxy.Response) {
	h := a.Healer
	h.flights.end(v.ID())
	if v.Gen() == 0 || resp == nil || resp.Status >= 500 {
		return
	}
	var buf [128]byte
	done := v.Time().Add(resp.Latency).UnixNano() // the proxy's clock, not another read of it
	if rt := h.benign.admit(v.Method(), v.AppendPath(buf[:0]), done); rt != nil {
		h.benign.put(rt, v.Request())
	}
}

// Inspect is Admit for a request already copied: it answers sealed and
// guarded requests and tracks the others.
// The proxy calls Admit again before it sends a request to another backend
// (a retry, a reroute, after waiting for a primary), so a request cleared
// earlier can still be stopped by a rule installed since; it then leaves the
// in-flight tracker, which would otherwise blame it for a later crash.
func (a *Attached) Inspect(r *proxy.Request) *proxy.Answer {
	// The common case (no guard on, no rule, no crash being analysed)
	// allocates nothing: the tracker and the benign sample keep the
	// proxy's own copy of the request.
	if ans := a.check(r); ans != nil {
		a.Healer.end(r, false)
		return ans
	}
	a.Healer.begin(r)
	return nil
}

// check answers a request that a guard or a seal rule stops; nil lets it pass.
func (a *Attached) check(r *proxy.Request) *proxy.Answer {
	if a.Guards.Active() {
		gr := guard.Request{Method: r.Method, Path: r.Path, RawQuery: r.RawQuery, Header: r.Header, Body: r.Body, BodyLen: r.BodyLen}
		if status, hdr, body, ok := a.Guards.Check(&gr); !ok {
			return &proxy.Answer{Status: status, Header: hdr, Body: body}
		}
	}
	h := a.Healer
	h.waitGate()
	if set := h.store.set.Load(); set.Len() > 0 {
		if status, hdr, body, sealed := h.match(set, toInput(r)); sealed {
			return &proxy.Answer{Status: status, Header: hdr, Body: body}
		}
	}
	return nil
}

// Observe is Complete for a request already copied; it keeps every benign
// request, whatever the rate.
func (a *Attached) Observe(r *proxy.Request, resp *proxy.Response) {
	a.Healer.end(r, r.Gen != 0 && resp != nil && resp.Status < 500)
}

func toInput(r *proxy.Request) *rule.Input {
	return &rule.Input{ID: r.ID, Method: r.Method, Path: r.Path, RawQuery: r.RawQuery, Header: r.Header, Body: r.Body, BodyLen: r.BodyLen}
}

func (a *Attached) onCrash(c supervisor.Crash) {
	rep := CrashReport{Gen: c.Gen, Time: c.Time, Stderr: c.Stderr}
	if c.Err != nil {
		rep.Err = c.Err.Error()
	}
	for i := range c.InFlight {
		rep.InFlight = append(rep.InFlight, toInput(&c.InFlight[i]))
	}
	for _, r := range a.Healer.Crash(rep) {
		a.sup.Event(c.Gen, "seal", fmt.Sprintf("rule %s installed: %s (%s)", r.ID, r.Match, r.Reason))
	}
}

func (a *Attached) routes() {
	a.sup.Handle("GET /v1/seal", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Healer.expire()
		adminhttp.WriteJSON(w, http.StatusOK, api.SealList{Version: api.Version, Rules: a.Healer.List()})
	}))
	a.sup.Handle("POST /v1/seal", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.SealAddRequest
		if err := adminhttp.Decode(r, &req); err != nil {
			adminhttp.WriteError(w, http.StatusBadRequest, fmt.Errorf("add seal rule: %w", err))
			return
		}
		rule, existed, err := a.Healer.Add(req)
		if err != nil {
			adminhttp.WriteError(w, http.StatusBadRequest, err)
			return
		}
		code := http.StatusCreated
		if existed {
			code = http.StatusOK
		}
		adminhttp.WriteJSON(w, code, api.SealAddResult{Version: api.Version, Rule: rule, Existed: existed})
	}))
	a.sup.Handle("DELETE /v1/seal/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		ok, err := a.Healer.Remove(id)
		switch {
		case err != nil:
			adminhttp.WriteError(w, http.StatusInternalServerError, err)
		case !ok:
			adminhttp.WriteError(w, http.StatusNotFound, fmt.Errorf("remove seal rule: no rule %q", id))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	a.sup.Handle("GET /v1/guards", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		adminhttp.WriteJSON(w, http.StatusOK, api.GuardList{Version: api.Version, Guards: a.Guards.List()})
	}))
	a.sup.Handle("POST /v1/guards", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.GuardRequest
		if err := adminhttp.Decode(r, &req); err != nil {
			adminhttp.WriteError(w, http.StatusBadRequest, fmt.Errorf("guards: %w", err))
			return
		}
		if err := a.applyGuards(req); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, guard.ErrNoKey) {
				code = http.StatusConflict
			}
			adminhttp.WriteError(w, code, err)
			return
		}
		adminhttp.WriteJSON(w, http.StatusOK, api.GuardList{Version: api.Version, Guards: a.Guards.List()})
	}))
}

func (a *Attached) applyGuards(req api.GuardRequest) error {
	if req.Alert != nil {
		if len(req.IDs) > 0 {
			return errors.New("guards: give an alert or ids, not both")
		}
		body, others, err := a.Guards.Apply(req.Alert)
		if err != nil {
			a.sup.Event(0, "alert-refused", err.Error())
			return err
		}
		msg := fmt.Sprintf("alert %s switched on %s", body.ID, strings.Join(body.CheckIDs(), ", "))
		if len(others) > 0 {
			msg += fmt.Sprintf(" (not guards, left to their provider: %s)", strings.Join(others, ", "))
		}
		a.sup.Event(0, "alert", msg)
		return nil
	}
	if len(req.IDs) == 0 {
		return errors.New("guards: no alert and no ids")
	}
	for _, id := range req.IDs {
		if err := a.Guards.Set(id, req.On, req.Params); err != nil {
			return err
		}
	}
	return nil
}
