// Package loadgen generates HTTP load that cannot hide failures: keep-alive
// clients that send POSTs (which net/http never retries) as well as GETs, and
// a client that opens a fresh connection for every request. graft demo and
// the upgrade benchmarks use it to count failed requests during upgrades.
package loadgen

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

// Options describe the load. The zero value of each field has a default.
type Options struct {
	URL       string // target, e.g. "http://127.0.0.1:8080/"
	KeepAlive int    // concurrent keep-alive clients; 0 means 16
	Fresh     int    // clients that open a new connection per request; 0 means 1, -1 none
	// PostEvery makes every n-th keep-alive request a POST with a small body;
	// 0 means 2 (half of them).
	PostEvery int
}

// Result counts what the load saw.
type Result struct {
	Requests          uint64
	Failures          uint64 // all failed requests: transport errors and non-2xx answers
	KeepAliveFailures uint64
	FreshFailures     uint64
	Posts             uint64
	Errors            []string // the first few distinct failure reasons
	P50, P99          time.Duration
}

// Run sends load until ctx ends and returns what it saw.
func Run(ctx context.Context, opts Options) Result {
	opts = withDefaults(opts)
	var (
		rec recorder
		wg  sync.WaitGroup
	)
	keepAlive := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: opts.KeepAlive,
		DisableCompression:  true,
	}}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	for i := range opts.KeepAlive {
		wg.Go(func() { rec.loop(ctx, keepAlive, opts, i, false) })
	}
	for i := range max(opts.Fresh, 0) {
		wg.Go(func() { rec.loop(ctx, fresh, opts, i, true) })
	}
	wg.Wait()
	keepAlive.CloseIdleConnections()
	return rec.result()
}

func withDefaults(o Options) Options {
	if o.KeepAlive == 0 {
		o.KeepAlive = 16
	}
	if o.Fresh == 0 {
		o.Fresh = 1
	}
	if o.PostEvery == 0 {
		o.PostEvery = 2
	}
	return o
}

type recorder struct {
	requests, failures, keepAliveFailures, freshFailures, posts atomic.Uint64

	mu        sync.Mutex
	errors    []string
	latencies []time.Duration
}

func (r *recorder) loop(ctx context.Context, c *http.Client, opts Options, worker int, fresh bool) {
	var lat []time.Duration
	defer func() {
		r.mu.Lock()
		r.latencies = append(r.latencies, lat...)
		r.mu.Unlock()
	}()
	for n := 0; ctx.Err() == nil; n++ {
		post := !fresh && (n+worker)%opts.PostEvery == 0
		start := time.Now()
		err := r.do(ctx, c, opts.URL, post, fmt.Sprintf("w%d-%d", worker, n))
		if ctx.Err() != nil {
			return // a request cut by the end of the run is not a failure
		}
		lat = append(lat, time.Since(start))
		r.requests.Add(1)
		if post {
			r.posts.Add(1)
		}
		if err != nil {
			r.fail(err, fresh)
		}
	}
}

func (r *recorder) do(ctx context.Context, c *http.Client, url string, post bool, id string) error {
	method, body := http.MethodGet, io.Reader(nil)
	if post {
		method, body = http.MethodPost, bytes.NewReader([]byte(`{"id":"`+id+`"}`))
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s: read body: %w", method, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: status %s", method, resp.Status)
	}
	return nil
}

func (r *recorder) fail(err error, fresh bool) {
	r.failures.Add(1)
	if fresh {
		r.freshFailures.Add(1)
	} else {
		r.keepAliveFailures.Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if msg := err.Error(); len(r.errors) < 5 && !slices.Contains(r.errors, msg) {
		r.errors = append(r.errors, msg)
	}
}

func (r *recorder) result() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(r.latencies)
	return Result{
		Requests:          r.requests.Load(),
		Failures:          r.failures.Load(),
		KeepAliveFailures: r.keepAliveFailures.Load(),
		FreshFailures:     r.freshFailures.Load(),
		Posts:             r.posts.Load(),
		Errors:            slices.Clone(r.errors),
		P50:               percentile(r.latencies, 0.50),
		P99:               percentile(r.latencies, 0.99),
	}
}

// percentile of sorted durations; 0 when there are none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}
