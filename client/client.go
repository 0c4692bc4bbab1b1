// Package client is the typed Go client of a graft supervisor's admin API,
// used by the CLI, tests and (later) the fleet agent. The API is HTTP + JSON
// on a unix socket; see docs/api.md.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/graftdev/graft/api"
)

// ErrNoSupervisor is returned when nothing answers on the admin socket.
var ErrNoSupervisor = errors.New("no supervisor answers")

// DefaultSocket is the per-user default admin socket path:
// $XDG_RUNTIME_DIR/graft/admin.sock, else /tmp/graft-UID/admin.sock.
func DefaultSocket(getenv func(string) string) string {
	if dir := getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "graft", "admin.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("graft-%d", os.Getuid()), "admin.sock")
}

// Client talks to one supervisor.
type Client struct {
	socket string
	http   *http.Client
}

// New returns a client of the supervisor whose admin API listens on socket.
func New(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr}}
}

// Socket is the admin socket path this client talks to.
func (c *Client) Socket() string { return c.socket }

// APIError is a non-2xx answer of the admin API.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Do sends in (if not nil) as JSON with method to path and decodes the JSON
// answer into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://graft"+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if isNoListener(err) {
			return fmt.Errorf("%w on %s", ErrNoSupervisor, c.socket)
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &APIError{Status: resp.StatusCode, Message: e.Error}
		}
		return &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Raw fetches path and returns the answer's body unparsed (metrics, HTML).
func (c *Client) Raw(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://graft"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if isNoListener(err) {
			return nil, fmt.Errorf("%w on %s", ErrNoSupervisor, c.socket)
		}
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("GET %s: %s", path, resp.Status)}
	}
	return data, nil
}

func isNoListener(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
