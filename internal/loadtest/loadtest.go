// Package loadtest is the load that upgrade tests, graft demo and
// bench/upgrade run: keep-alive clients each on their own connection,
// alternating GETs and POSTs (POSTs are never retried by net/http, so a
// dropped request shows), plus clients that open a fresh connection per
// request. It records when
// each generation (the X-Graft-Gen answer header) was first seen, which
// gives the cutover latency.
package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// GenHeader is the answer header fixtures set to their generation number.
const GenHeader = "X-Graft-Gen"

// Options describe the load.
type Options struct {
	URL       string
	KeepAlive int // keep-alive clients, each with its own connection; 0 means 16
	Fresh     int // clients opening a connection per request; 0 means 1, -1 none
	// Accept says which answer statuses count as success; nil means 2xx.
	// A server that answers POST with 501 (python's http.server) still
	// answered: only transport errors and proxy-made 502/503 are failures.
	Accept func(status int) bool
}

// Result is what the load saw.
type Result struct {
	Requests          uint64
	Posts             uint64
	KeepAliveFailures uint64
	FreshFailures     uint64
	Errors            []string             // the first distinct failure reasons
	FirstSeen         map[string]time.Time // generation header value → first answer
}

// Failures is the sum of both kinds.
func (r Result) Failures() uint64 { return r.KeepAliveFailures + r.FreshFailures }

func (r Result) String() string {
	return fmt.Sprintf("requests=%d posts=%d failures keep-alive=%d fresh=%d errors=%q",
		r.Requests, r.Posts, r.KeepAliveFailures, r.FreshFailures, r.Errors)
}

// Load runs until Stop.
type Load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	requests, posts, kaFail, freshFail atomic.Uint64

	mu     sync.Mutex
	errors []string
	first  map[string]time.Time
}

// Start begins the load.
func Start(ctx context.Context, opts Options) *Load {
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 16
	}
	if opts.Fresh == 0 {
		opts.Fresh = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{cancel: cancel, first: map[string]time.Time{}}
	for i := range opts.KeepAlive {
		c := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true}}
		l.wg.Go(func() { l.loop(ctx, c, opts, i, false) })
	}
	for i := range max(opts.Fresh, 0) {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
		l.wg.Go(func() { l.loop(ctx, c, opts, i, true) })
	}
	return l
}

// Requests is the number of requests answered so far.
func (l *Load) Requests() uint64 { return l.requests.Load() }

// Stop ends the load and returns its result.
func (l *Load) Stop() Result {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return Result{
		Requests: l.requests.Load(), Posts: l.posts.Load(),
		KeepAliveFailures: l.kaFail.Load(), FreshFailures: l.freshFail.Load(),
		Errors: slices.Clone(l.errors), FirstSeen: l.first,
	}
}

// FirstSeen returns when generation gen was first seen in an answer.
func (l *Load) FirstSeen(gen string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.first[gen]
	return t, ok
}

func (l *Load) loop(ctx context.Context, c *http.Client, opts Options, worker int, fresh bool) {
	defer c.CloseIdleConnections()
	last := ""
	for n := 0; ctx.Err() == nil; n++ {
		post := fresh || (n+worker)%2 == 0
		gen, err := do(ctx, c, opts, post, fmt.Sprintf("w%d-%d", worker, n))
		now := time.Now()
		if ctx.Err() != nil {
			return // a request cut by the end of the run is not a failure
		}
		l.requests.Add(1)
		if post {
			l.posts.Add(1)
		}
		if err != nil {
			if fresh {
				l.freshFail.Add(1)
			} else {
				l.kaFail.Add(1)
			}
			l.mu.Lock()
			if msg := err.Error(); len(l.errors) < 8 && !slices.Contains(l.errors, msg) {
				l.errors = append(l.errors, msg)
			}
			l.mu.Unlock()
			continue
		}
		if gen != "" && gen != last {
			last = gen
			l.mu.Lock()
			if t, ok := l.first[gen]; !ok || now.Before(t) {
				l.first[gen] = now
			}
			l.mu.Unlock()
		}
	}
}

func do(ctx context.Context, c *http.Client, opts Options, post bool, id string) (string, error) {
	method, body := http.MethodGet, io.Reader(nil)
	if post {
		method, body = http.MethodPost, bytes.NewReader([]byte(`{"id":"`+id+`"}`))
	}
	req, err := http.NewRequestWithContext(ctx, method, opts.URL, body)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("%s: read body: %w", method, err)
	}
	ok := resp.StatusCode/100 == 2
	if opts.Accept != nil {
		ok = opts.Accept(resp.StatusCode)
	}
	if !ok {
		return "", fmt.Errorf("%s: status %s", method, resp.Status)
	}
	return resp.Header.Get(GenHeader), nil
}
