package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// ReadyKind is how a generation shows it is ready.
type ReadyKind string

const (
	ReadyNotify ReadyKind = "notify" // READY=1 on NOTIFY_SOCKET
	ReadyTCP    ReadyKind = "tcp"    // its private address accepts a connection (proxy mode)
	ReadyHTTP   ReadyKind = "http"   // GET PATH on its private address answers below 500 (proxy mode)
	ReadyDelay  ReadyKind = "delay"  // it is still running after a fixed delay
)

// ReadySpec is a parsed --ready value.
type ReadySpec struct {
	Kind  ReadyKind
	Path  string        // http
	Delay time.Duration // delay
}

func (r ReadySpec) String() string {
	switch r.Kind {
	case ReadyHTTP:
		return "http:" + r.Path
	case ReadyDelay:
		return "delay:" + r.Delay.String()
	}
	return string(r.Kind)
}

// ParseReady parses --ready: "notify", "tcp", "http:/PATH" or "delay:DUR".
// The empty string gives the mode's default: notify in socket mode, tcp in
// proxy mode. Socket mode accepts only notify and delay: a probe of the
// shared public socket could be answered by the old generation.
func ParseReady(s string, proxyMode bool) (ReadySpec, error) {
	var r ReadySpec
	switch {
	case s == "":
		if proxyMode {
			return ReadySpec{Kind: ReadyTCP}, nil
		}
		return ReadySpec{Kind: ReadyNotify}, nil
	case s == "notify":
		r.Kind = ReadyNotify
	case s == "tcp":
		r.Kind = ReadyTCP
	case strings.HasPrefix(s, "http:"):
		r.Kind, r.Path = ReadyHTTP, strings.TrimPrefix(s, "http:")
		if !strings.HasPrefix(r.Path, "/") || strings.ContainsAny(r.Path, " \t\r\n") {
			return ReadySpec{}, fmt.Errorf("parse ready %q: http path must start with / and hold no spaces", s)
		}
	case strings.HasPrefix(s, "delay:"):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "delay:"))
		if err != nil || d < 0 {
			return ReadySpec{}, fmt.Errorf("parse ready %q: want delay:DURATION", s)
		}
		r.Kind, r.Delay = ReadyDelay, d
	default:
		return ReadySpec{}, fmt.Errorf("parse ready %q: want notify, tcp, http:/PATH or delay:DUR", s)
	}
	if !proxyMode && (r.Kind == ReadyTCP || r.Kind == ReadyHTTP) {
		return ReadySpec{}, fmt.Errorf("parse ready %q: socket mode can only use notify or delay:DUR (a probe of the shared socket may reach the old generation); use --proxy for tcp/http probes", s)
	}
	return r, nil
}

// probe checks once whether addr passes r's probe (tcp, http). Other kinds
// always pass: they are awaited elsewhere.
func (r ReadySpec) probe(ctx context.Context, c *http.Client, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	switch r.Kind {
	case ReadyTCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	case ReadyHTTP:
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
