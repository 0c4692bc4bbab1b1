package supervisor

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Supervisor) routes() {
	s.mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	s.mux.HandleFunc("POST /v1/upgrade", func(w http.ResponseWriter, r *http.Request) {
		var req api.UpgradeRequest
		if err := decodeBody(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("upgrade: %w", err))
			return
		}
		// The upgrade runs on the supervisor's context: a client that goes
		// away does not leave a half-done cutover behind.
		res, err := s.Upgrade(s.ctx, req.Command)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	s.mux.HandleFunc("POST /v1/rollback", func(w http.ResponseWriter, r *http.Request) {
		if err := decodeBody(r, &struct{}{}); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("rollback: %w", err))
			return
		}
		res, err := s.Rollback(s.ctx)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no route %s %s", r.Method, r.URL.Path))
	})
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBusy), errors.Is(err, ErrNoRollback):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// decodeBody decodes an optional JSON body (empty is fine) of at most 1 MiB.
func decodeBody(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(data) > 1<<20 {
		return errors.New("body larger than 1 MiB")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, api.Error{Version: api.Version, Error: err.Error()})
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

var umaskMu sync.Mutex

// listenAdmin creates the unix admin socket with mode 0600 in a directory
// it creates 0700 when missing. It refuses when another supervisor answers
// there and removes a stale socket file.
func listenAdmin(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("admin socket dir: %w", err)
		}
	}
	if err := removeStale(path); err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	// The umask closes the window between bind and chmod.
	umaskMu.Lock()
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return ln, nil
}

func (s *Supervisor) startAdmin(ctx context.Context) (*adminServers, error) {
	a := &adminServers{}
	serve := func(ln net.Listener, h http.Handler) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
		a.servers = append(a.servers, srv)
		a.wg.Go(func() { srv.Serve(ln) })
	}
	if s.opts.AdminSocket != "" {
		ln, err := listenAdmin(s.opts.AdminSocket)
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
		serve(ln, bearer(s.opts.AdminToken, s.mux))
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

// bearer admits only requests carrying "Authorization: Bearer token".
func bearer(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
