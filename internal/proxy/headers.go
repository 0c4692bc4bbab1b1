package proxy

import (
	"net"
	"net/http"
	"strings"
)

// hopHeaders are meaningful only for one connection (RFC 9110 §7.6.1) and
// are never forwarded; headers named in Connection are dropped too.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHop deletes hop-by-hop headers from h in place.
func removeHop(h http.Header) {
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// isUpgrade reports whether r asks to switch protocols (WebSocket & co).
func isUpgrade(h http.Header) string {
	if !headerHasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

func headerHasToken(vals []string, tok string) bool {
	for _, v := range vals {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), tok) {
				return true
			}
		}
	}
	return false
}

// addForwarded appends the client's IP to X-Forwarded-For.
func addForwarded(h http.Header, remoteAddr string) {
	ip, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		ip = remoteAddr
	}
	if ip == "" {
		return
	}
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		ip = strings.Join(prior, ", ") + ", " + ip
	}
	h["X-Forwarded-For"] = []string{ip}
}

// idempotent reports whether a request with this method may be sent twice;
// PUT and DELETE only when their whole body is held (buffered).
func idempotent(method string, buffered bool) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return buffered
	case http.MethodPut, http.MethodDelete:
		return buffered
	}
	return false
}
