package shadow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/adminhttp"
	"github.com/graftdev/graft/internal/proxy"
	"github.com/graftdev/graft/internal/shadow/differ"
	"github.com/graftdev/graft/internal/shadow/worker"
	"github.com/graftdev/graft/internal/supervisor"
)

// AttachOptions configures Attach; the zero value works.
type AttachOptions struct {
	ServiceOptions
	// SetHooks installs shadowing's proxy hooks while a run mirrors, and
	// the zero Hooks when it ends. The proxy takes all its hooks in one
	// SetHooks call, so whoever has hooks of its own (self-healing) must
	// pass a function that composes them (proxy.Compose). Nil means
	// Attach calls Proxy().SetHooks itself, replacing any other hook.
	SetHooks func(proxy.Hooks)
}

// Attach adds shadowing to a supervisor in proxy mode: the admin routes
// POST /v1/shadow, POST /v1/shadow/stop, GET /v1/report and
// GET /v1/report.html, and the graft_shadow_* metrics. Each run's
// comparisons run in a worker process, opts.Controller.Worker, by default
// worker.Self's (this binary re-executed). Call before sup.Run; call
// Service.Close when the supervisor has stopped.
func Attach(sup *supervisor.Supervisor, opts AttachOptions) (*Service, error) {
	m, err := NewMetrics(sup.Registry())
	if err != nil {
		return nil, fmt.Errorf("attach shadow: %w", err)
	}
	opts.Controller.Metrics = m
	if opts.Logger == nil {
		opts.Logger = sup.Logger()
	}
	if opts.Controller.Worker == nil {
		opts.Controller.Worker = worker.Self(os.Getenv)
		if opts.Controller.Worker == nil && opts.Logger != nil {
			opts.Logger.Warn("shadow: no worker process (this binary's path is unknown); comparisons run in graft's process", "component", "shadow")
		}
	}
	setHooks := opts.SetHooks
	if setHooks == nil {
		setHooks = func(h proxy.Hooks) {
			if p := sup.Proxy(); p != nil {
				p.SetHooks(h)
			}
		}
	}
	h := Host{
		StartLane: func(ctx context.Context, role string, cmd []string, priority string) (Lane, error) {
			if sup.Proxy() == nil {
				return nil, ErrNoProxy
			}
			l, err := sup.StartLaneWith(ctx, role, cmd, supervisor.LaneOptions{Priority: supervisor.LanePriority(priority)})
			if err != nil {
				return nil, err
			}
			return l, nil
		},
		Upgrade: sup.Upgrade,
		ServingCmd: func() ([]string, error) {
			st := sup.Status()
			for _, g := range st.Generations {
				if g.Number == st.Serving && st.Serving != 0 {
					return g.Command, nil
				}
			}
			return nil, supervisor.ErrNotServing
		},
		SetHooks: setHooks,
		Event:    sup.Event,
		Available: func() error {
			if sup.Proxy() == nil {
				return ErrNoProxy
			}
			return nil
		},
	}
	s := NewService(h, opts.ServiceOptions)
	s.Mount(sup.Handle)
	return s, nil
}

// Mount registers the service's admin routes with handle (a ServeMux's
// Handle, or Supervisor.Handle).
func (s *Service) Mount(handle func(pattern string, h http.Handler)) {
	handle("POST /v1/shadow", http.HandlerFunc(s.serveStart))
	handle("POST /v1/shadow/stop", http.HandlerFunc(s.serveStop))
	handle("GET /v1/report", http.HandlerFunc(s.serveReport))
	handle("GET /v1/report.html", http.HandlerFunc(s.serveReportHTML))
}

func (s *Service) serveStart(w http.ResponseWriter, r *http.Request) {
	var req api.ShadowRequest
	if err := adminhttp.Decode(r, &req); err != nil {
		adminhttp.WriteError(w, http.StatusBadRequest, fmt.Errorf("start shadow: %w", err))
		return
	}
	rep, err := s.Start(req)
	switch {
	case errors.Is(err, ErrBusy):
		adminhttp.WriteError(w, http.StatusConflict, err)
	case err != nil:
		adminhttp.WriteError(w, http.StatusBadRequest, err)
	default:
		adminhttp.WriteJSON(w, http.StatusAccepted, rep)
	}
}

func (s *Service) serveStop(w http.ResponseWriter, r *http.Request) {
	rep, err := s.Stop(r.Context())
	switch {
	case errors.Is(err, ErrNoRun):
		adminhttp.WriteError(w, http.StatusNotFound, err)
	case err != nil:
		adminhttp.WriteError(w, http.StatusServiceUnavailable, err)
	default:
		adminhttp.WriteJSON(w, http.StatusOK, rep)
	}
}

func (s *Service) serveReport(w http.ResponseWriter, r *http.Request) {
	adminhttp.WriteJSON(w, http.StatusOK, s.Report())
}

func (s *Service) serveReportHTML(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	if err := differ.WriteHTML(&b, s.Report()); err != nil {
		adminhttp.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}
