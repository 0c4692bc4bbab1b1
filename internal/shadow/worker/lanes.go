package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/graftdev/graft/internal/shadow/differ"
)

// laneClient sends mirrored requests to one lane over a few kept-alive
// connections, one request at a time per connection. It is a small
// HTTP/1.1 client rather than net/http's Transport because this work runs
// for every mirrored exchange: the request is written and the answer read
// on the worker's goroutine, without the Transport's per-connection
// goroutines and hand-offs (BenchmarkMirror).
type laneClient struct {
	addr    string
	bodyCap int
	timeout time.Duration
	idle    chan *laneConn // kept-alive connections, at most one per worker
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
}

type laneConn struct {
	c  net.Conn
	br *bufio.Reader
	wb []byte
}

func newLaneClient(addr string, bodyCap int, timeout time.Duration, workers int) *laneClient {
	return &laneClient{
		addr: addr, bodyCap: bodyCap, timeout: timeout,
		idle: make(chan *laneConn, workers),
		dial: (&net.Dialer{Timeout: timeout}).DialContext,
	}
}

// close closes the idle connections; call it once no request is running.
func (l *laneClient) close() {
	for {
		select {
		case lc := <-l.idle:
			lc.c.Close()
		default:
			return
		}
	}
}

// hopHeaders are not forwarded (RFC 9110 §7.6.1), nor are the framing
// fields the client restates, nor Expect (no 100-continue with a lane).
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true, "Expect": true,
}

// maxDrain is how much of an answer past the body cap is read and thrown
// away to keep its connection; longer answers close it instead.
const maxDrain = 256 << 10

func (l *laneClient) do(ctx context.Context, r *Request) *differ.Answer {
	a, reused, err := l.try(ctx, r)
	// A kept-alive connection the lane closed meanwhile fails before any
	// answer; a safe request is sent again on a new one, as net/http does.
	if err != nil && reused && ctx.Err() == nil && errors.Is(err, errStale) && safeMethod(r.Method) {
		a, _, err = l.try(ctx, r)
	}
	if err != nil {
		return &differ.Answer{Err: err}
	}
	return a
}

var errStale = errors.New("connection closed before an answer")

func safeMethod(m string) bool { return m == "GET" || m == "HEAD" || m == "OPTIONS" }

func (l *laneClient) try(ctx context.Context, r *Request) (a *differ.Answer, reused bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err // a kept-alive connection would still send it
	}
	var lc *laneConn
	select {
	case lc = <-l.idle:
		reused = true
	default:
		c, err := l.dial(ctx, "tcp", l.addr)
		if err != nil {
			return nil, false, err
		}
		lc = &laneConn{c: c, br: bufio.NewReaderSize(c, 8<<10)}
	}
	keep := false
	defer func() {
		if keep {
			select {
			case l.idle <- lc:
				return
			default:
			}
		}
		lc.c.Close()
	}()
	lc.c.SetDeadline(time.Now().Add(l.timeout))
	// The run's end interrupts a request waiting on a stalled lane.
	stop := context.AfterFunc(ctx, func() { lc.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	lc.wb = appendLaneRequest(lc.wb[:0], l.addr, r)
	if _, err := lc.c.Write(lc.wb); err != nil {
		return nil, reused, fmt.Errorf("%w: %w", errStale, err)
	}
	if _, err := lc.br.Peek(1); err != nil {
		if err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err) {
			err = fmt.Errorf("%w: %w", errStale, err)
		}
		return nil, reused, err
	}
	resp, err := http.ReadResponse(lc.br, &http.Request{Method: r.Method})
	if err != nil {
		return nil, reused, fmt.Errorf("read answer: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(l.bodyCap)+1))
	if err != nil {
		resp.Body.Close()
		return nil, reused, fmt.Errorf("read answer: %w", err)
	}
	a = &differ.Answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if len(b) > l.bodyCap {
		a.Body, a.Truncated = b[:l.bodyCap], true
		n, _ := io.CopyN(io.Discard, resp.Body, maxDrain)
		if n == maxDrain {
			resp.Body.Close()
			return a, reused, nil // the rest is not read: the connection goes
		}
	}
	resp.Body.Close()
	keep = !resp.Close && ctx.Err() == nil
	return a, reused, nil
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// appendLaneRequest writes r's HTTP/1.1 request head and body for a lane.
func appendLaneRequest(w []byte, addr string, r *Request) []byte {
	w = append(w, r.Method...)
	w = append(w, ' ')
	if r.Path == "" {
		w = append(w, '/')
	}
	w = append(w, r.Path...)
	if r.RawQuery != "" {
		w = append(w, '?')
		w = append(w, r.RawQuery...)
	}
	w = append(w, " HTTP/1.1\r\n"...)
	if len(r.Header["Host"]) == 0 {
		w = append(w, "Host: "...)
		w = append(w, addr...)
		w = append(w, "\r\n"...)
	}
	for k, vs := range r.Header {
		if hopHeaders[http.CanonicalHeaderKey(k)] || strings.ContainsAny(k, "\r\n:") {
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") {
				continue // never split the head: a value the proxy let by is kept whole or not at all
			}
			w = append(w, k...)
			w = append(w, ": "...)
			w = append(w, v...)
			w = append(w, "\r\n"...)
		}
	}
	if len(r.Body) > 0 || r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH" {
		w = append(w, "Content-Length: "...)
		w = strconv.AppendInt(w, int64(len(r.Body)), 10)
		w = append(w, "\r\n"...)
	}
	w = append(w, "\r\n"...)
	return append(w, r.Body...)
}
