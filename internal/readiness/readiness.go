// Package readiness holds how a process shows it is ready to serve: the
// --ready spec (notify, tcp, http:/PATH, delay:DUR), the tcp and http
// probes, and systemd's notify protocol both ways (a private NOTIFY_SOCKET
// on which a generation says READY=1, and graft's own READY=1 to its
// service manager). It is apart from the supervisor because it is a
// protocol with its own parser and fuzz target, not generation policy: the
// supervisor decides what to wait for and what a failure means.
package readiness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Kind is how a generation shows it is ready.
type Kind string

const (
	Notify Kind = "notify" // READY=1 on NOTIFY_SOCKET
	TCP    Kind = "tcp"    // its private address accepts a connection (proxy mode)
	HTTP   Kind = "http"   // GET PATH on its private address answers below 500 (proxy mode)
	Delay  Kind = "delay"  // it is still running after a fixed delay
)

// Spec is a parsed --ready value.
type Spec struct {
	Kind  Kind
	Path  string        // http
	Delay time.Duration // delay
}

func (r Spec) String() string {
	switch r.Kind {
	case HTTP:
		return "http:" + r.Path
	case Delay:
		return "delay:" + r.Delay.String()
	}
	return string(r.Kind)
}

// Parse parses --ready: "notify", "tcp", "http:/PATH" or "delay:DUR".
// The empty string gives the mode's default: notify in socket mode, tcp in
// proxy mode. Socket mode accepts only notify and delay: a probe of the
// shared public socket could be answered by the old generation.
func Parse(s string, proxyMode bool) (Spec, error) {
	var r Spec
	switch {
	case s == "":
		if proxyMode {
			return Spec{Kind: TCP}, nil
		}
		return Spec{Kind: Notify}, nil
	case s == "notify":
		r.Kind = Notify
	case s == "tcp":
		r.Kind = TCP
	case strings.HasPrefix(s, "http:"):
		r.Kind, r.Path = HTTP, strings.TrimPrefix(s, "http:")
		if !strings.HasPrefix(r.Path, "/") || strings.ContainsAny(r.Path, " \t\r\n") {
			return Spec{}, fmt.Errorf("parse ready %q: http path must start with / and hold no spaces", s)
		}
	case strings.HasPrefix(s, "delay:"):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "delay:"))
		if err != nil || d < 0 {
			return Spec{}, fmt.Errorf("parse ready %q: want delay:DURATION", s)
		}
		r.Kind, r.Delay = Delay, d
	default:
		return Spec{}, fmt.Errorf("parse ready %q: want notify, tcp, http:/PATH or delay:DUR", s)
	}
	if !proxyMode && (r.Kind == TCP || r.Kind == HTTP) {
		return Spec{}, fmt.Errorf("parse ready %q: socket mode can only use notify or delay:DUR (a probe of the shared socket may reach the old generation); use --proxy for tcp/http probes", s)
	}
	return r, nil
}

// Probe checks once whether addr passes r's probe (tcp, http). Other kinds
// always pass: they are awaited elsewhere.
func (r Spec) Probe(ctx context.Context, c *http.Client, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	switch r.Kind {
	case TCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	case HTTP:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+r.Path, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("GET %s: %s", r.Path, resp.Status)
		}
	}
	return nil
}
