package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/adminhttp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Supervisor) routes() {
	s.mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		adminhttp.WriteJSON(w, http.StatusOK, s.Status())
	})
	s.mux.HandleFunc("POST /v1/upgrade", func(w http.ResponseWriter, r *http.Request) {
		var req api.UpgradeRequest
		if err := adminhttp.DecodeOptional(r, &req); err != nil {
			adminhttp.WriteError(w, http.StatusBadRequest, fmt.Errorf("upgrade: %w", err))
			return
		}
		// The upgrade runs on the supervisor's context: a client that goes
		// away does not leave a half-done cutover behind.
		res, err := s.Upgrade(s.ctx, req.Command)
		if err != nil {
			adminhttp.WriteError(w, statusOf(err), err)
			return
		}
		adminhttp.WriteJSON(w, http.StatusOK, res)
	})
	s.mux.HandleFunc("POST /v1/rollback", func(w http.ResponseWriter, r *http.Request) {
		if err := adminhttp.DecodeOptional(r, &struct{}{}); err != nil {
			adminhttp.WriteError(w, http.StatusBadRequest, fmt.Errorf("rollback: %w", err))
			return
		}
		res, err := s.Rollback(s.ctx)
		if err != nil {
			adminhttp.WriteError(w, statusOf(err), err)
			return
		}
		adminhttp.WriteJSON(w, http.StatusOK, res)
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		adminhttp.WriteError(w, http.StatusNotFound, fmt.Errorf("no route %s %s", r.Method, r.URL.Path))
	})
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBusy), errors.Is(err, ErrNoRollback):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// Handler is the admin API (for tests and for mounting elsewhere).
func (s *Supervisor) Handler() http.Handler { return s.mux }

// adminServers are the admin and metrics servers of one Run.
type adminServers struct {
	servers []*http.Server
	wg      sync.WaitGroup
	path    string
}

func (a *adminServers) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range a.servers {
		srv.Shutdown(ctx)
	}
	a.wg.Wait()
	if a.path != "" {
		os.Remove(a.path)
	}
}

func (s *Supervisor) startAdmin(ctx context.Context) (*adminServers, error) {
	a := &adminServers{}
	serve := func(ln net.Listener, h http.Handler) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
		a.servers = append(a.servers, srv)
		a.wg.Go(func() { srv.Serve(ln) })
	}
	if s.opts.AdminSocket != "" {
		ln, err := adminhttp.ListenSocket(s.opts.AdminSocket)
		if err != nil {
			return nil, err
		}
		a.path = s.opts.AdminSocket
		serve(ln, s.mux)
	}
	if s.opts.AdminTCP != "" {
		ln, err := net.Listen("tcp", s.opts.AdminTCP)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("admin tcp: %w", err)
		}
		serve(ln, adminhttp.Bearer(s.opts.AdminToken, s.mux))
	}
	if s.opts.MetricsAddr != "" {
		ln, err := net.Listen("tcp", s.opts.MetricsAddr)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("metrics: %w", err)
		}
		m := http.NewServeMux()
		m.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
		serve(ln, m)
	}
	return a, nil
}
