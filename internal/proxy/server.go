package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// server is the client side: it terminates HTTP/1.1 and hands each request
// to the proxy's routing.
type server struct {
	p  *Proxy
	hs *http.Server

	mu      sync.Mutex
	tunnels map[net.Conn]struct{}
	wg      sync.WaitGroup // tunnel goroutines
}

func newServer(p *Proxy) *server {
	s := &server{p: p, tunnels: make(map[net.Conn]struct{})}
	s.hs = &http.Server{
		Handler:  s,
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return s
}

func (s *server) serve(ln net.Listener) error {
	err := s.hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *server) shutdown(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	s.mu.Lock()
	for c := range s.tunnels {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := s.p
	p.nReq.Add(1)
	hooks := p.hooks.Load()

	h := r.Header.Clone()
	upgrade := isUpgrade(h)
	removeHop(h)
	addForwarded(h, r.RemoteAddr)
	if r.Host != "" {
		h["Host"] = []string{r.Host}
	}
	req := &Request{
		ID:       p.nextID.Add(1),
		Time:     time.Now(),
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   h,
		BodyLen:  r.ContentLength,
	}

	// The body prefix is read before routing: it feeds Inspect, InFlight
	// snapshots and retries (a body held whole can be sent twice).
	buffered := r.ContentLength == 0
	var rest io.Reader
	if r.ContentLength != 0 && r.Body != nil {
		n := p.bodyCap
		if r.ContentLength > 0 && r.ContentLength < int64(n) {
			n = int(r.ContentLength)
		}
		buf := make([]byte, n)
		k, err := io.ReadFull(r.Body, buf)
		req.Body = buf[:k]
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			buffered = r.ContentLength < 0
			if r.ContentLength >= 0 {
				// The client promised more than it sent.
				p.nFail.Add(1)
				http.Error(w, "bad request body", http.StatusBadRequest)
				return
			}
			req.BodyLen = int64(k)
		case err != nil:
			return // client went away
		case r.ContentLength == int64(k):
			buffered = true
		default:
			rest = r.Body
		}
	}

	if hooks != nil && hooks.Inspect != nil {
		p.nInspected.Add(1)
		if ans := hooks.Inspect(req); ans != nil {
			p.nBlocked.Add(1)
			for k, v := range ans.Header {
				w.Header()[k] = v
			}
			status := ans.Status
			if status == 0 {
				status = http.StatusOK
			}
			w.WriteHeader(status)
			w.Write(ans.Body)
			return
		}
	}

	b := p.waitPrimary(r.Context(), nil)
	retriable := rest == nil && idempotent(r.Method, buffered)
	for attempt := 0; ; attempt++ {
		if b == nil {
			p.nFail.Add(1)
			http.Error(w, "no backend", http.StatusServiceUnavailable)
			return
		}
		req.Gen = b.gen
		if !b.acquire(req) {
			// Closed after we picked it: nothing was sent, so any request,
			// POST included, may go to whoever serves now.
			b = p.waitPrimary(r.Context(), b)
			attempt--
			continue
		}
		if upgrade != "" {
			s.tunnel(w, r, req, b, upgrade)
			return
		}
		var body io.Reader
		if len(req.Body) > 0 || rest != nil {
			body = bytes.NewReader(req.Body)
			if rest != nil {
				body = io.MultiReader(body, rest)
			}
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+b.addr+r.URL.RequestURI(), body)
		if err != nil {
			b.release(req.ID, false)
			p.nFail.Add(1)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		out.Header = h.Clone()
		delete(out.Header, "Host")
		out.Host = r.Host
		out.ContentLength = r.ContentLength
		if r.ContentLength < 0 && buffered {
			out.ContentLength = int64(len(req.Body))
		}
		start := time.Now()
		resp, err := b.tr.RoundTrip(out)
		if err != nil {
			b.release(req.ID, false)
			b.nFail.Add(1)
			if retriable && attempt == 0 {
				if nb := s.retryTarget(b); nb != nil {
					b = nb
					continue
				}
			}
			p.logf("upstream failed", "gen", b.gen, "err", err)
			p.nFail.Add(1)
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		if resp.StatusCode >= 500 && retriable && attempt == 0 {
			if fb := p.fallback.Load(); fb != nil && fb != b {
				resp.Body.Close()
				b.release(req.ID, false)
				p.nRetry.Add(1)
				p.nFallback.Add(1)
				b = fb
				continue
			}
		}
		s.writeResponse(w, req, resp, b, start, hooks)
		return
	}
}

// retryTarget picks where a failed idempotent request goes: the new
// primary if it changed, else the fallback.
func (s *server) retryTarget(failed *Backend) *Backend {
	p := s.p
	if nb := p.primary.Load(); nb != nil && nb != failed {
		p.nRetry.Add(1)
		return nb
	}
	if fb := p.fallback.Load(); fb != nil && fb != failed {
		p.nRetry.Add(1)
		p.nFallback.Add(1)
		return fb
	}
	return nil
}

func (s *server) writeResponse(w http.ResponseWriter, req *Request, resp *http.Response, b *Backend, start time.Time, hooks *Hooks) {
	p := s.p
	defer resp.Body.Close()
	rh := resp.Header
	removeHop(rh)
	wh := w.Header()
	for k, v := range rh {
		wh[k] = v
	}
	if resp.ContentLength >= 0 && resp.Request.Method != http.MethodHead {
		wh["Content-Length"] = []string{itoa(resp.ContentLength)}
	}
	w.WriteHeader(resp.StatusCode)
	observe := hooks != nil && hooks.Observe != nil
	var capture []byte
	flush := resp.ContentLength < 0
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	var n int64
	var err error
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			if observe && len(capture) < p.bodyCap {
				capture = append(capture, buf[:min(k, p.bodyCap-len(capture))]...)
			}
			n += int64(k)
			if _, werr := w.Write(buf[:k]); werr != nil {
				err = werr
				break
			}
			if flush {
				rc.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	if err != nil {
		b.nFail.Add(1)
		b.release(req.ID, false)
		// Abort the client's response so it cannot mistake it for complete.
		panic(http.ErrAbortHandler)
	}
	b.release(req.ID, false)
	if observe {
		rc.Flush()
		hooks.Observe(req, &Response{
			Status:  resp.StatusCode,
			Header:  rh,
			Body:    capture,
			BodyLen: n,
			Latency: time.Since(start),
		})
	}
}

// tunnel passes an Upgrade request through and, on 101, pipes raw bytes
// both ways until either side closes.
func (s *server) tunnel(w http.ResponseWriter, r *http.Request, req *Request, b *Backend, upgrade string) {
	p := s.p
	up, err := net.Dial("tcp", b.addr)
	if err != nil {
		b.release(req.ID, false)
		b.nFail.Add(1)
		p.nFail.Add(1)
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	out, _ := http.NewRequest(r.Method, "http://"+b.addr+r.URL.RequestURI(), nil)
	out.Header = req.Header.Clone()
	delete(out.Header, "Host")
	out.Host = r.Host
	out.Header.Set("Connection", "Upgrade")
	out.Header.Set("Upgrade", upgrade)
	if err := out.Write(up); err != nil {
		up.Close()
		b.release(req.ID, false)
		b.nFail.Add(1)
		p.nFail.Add(1)
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	ubr := bufio.NewReader(up)
	resp, err := http.ReadResponse(ubr, out)
	if err != nil {
		up.Close()
		b.release(req.ID, false)
		b.nFail.Add(1)
		p.nFail.Add(1)
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		s.writeResponse(w, req, resp, b, req.Time, nil)
		up.Close()
		return
	}
	cc, cbrw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		b.release(req.ID, false)
		return
	}
	b.release(req.ID, true)
	resp.Body = nil
	resp.Header.Set("Connection", "Upgrade")
	if err := resp.Write(cbrw); err == nil {
		err = cbrw.Flush()
	}
	s.mu.Lock()
	s.tunnels[cc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.tunnels, cc)
		s.mu.Unlock()
		b.releaseTunnel()
		s.wg.Done()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, cbrw.Reader)
		if tc, ok := up.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	io.Copy(cc, ubr)
	if tc, ok := cc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	<-done
	cc.Close()
	up.Close()
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
