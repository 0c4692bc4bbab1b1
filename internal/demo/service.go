// Package demo is graft's built-in sample service and the story `graft demo`
// tells with it: a supervisor in proxy mode, generated load, several live
// upgrades, and a count of failed requests at the end.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Service is the sample service: a small JSON API that says which
// generation answered.
type Service struct {
	Generation string
	orders     atomic.Uint64
}

// Handler answers GET / with the generation and POST /orders with an order
// number.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, map[string]any{"service": "graft-demo", "generation": s.Generation})
	})
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.writeJSON(w, map[string]any{"order": s.orders.Add(1), "bytes": len(body), "generation": s.Generation})
	})
	return mux
}

// GenHeader names the generation that answered, so the demo's load can see
// when each generation took its first request.
const GenHeader = "X-Graft-Gen"

func (s *Service) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set(GenHeader, s.Generation)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// Serve runs the service on addr until ctx ends, then shuts down gracefully
// within a few seconds.
func (s *Service) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("demo service: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("demo service: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("demo service: shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("demo service: %w", err)
	}
	return nil
}
