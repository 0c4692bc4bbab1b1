package adminhttp

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/graftdev/graft/internal/listener"
)

var umaskMu sync.Mutex

// ListenSocket creates an admin API's unix socket with mode 0600, in a
// directory it creates 0700 when missing. It refuses when another process
// answers there (listener.ErrInUse) and removes a stale socket file.
func ListenSocket(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("admin socket dir: %w", err)
		}
	}
	if err := listener.RemoveStale(path); err != nil {
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

// Bearer admits only requests carrying "Authorization: Bearer token" (an
// admin API on TCP); others get 401 with an api.Error.
func Bearer(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			WriteError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
