package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/loadtest"
	"github.com/graftdev/graft/internal/supervisor"
)

// ServiceArg is the hidden graft subcommand that runs the sample service.
const ServiceArg = "__demo-service"

// DefaultPause is how long the load runs between two upgrades.
const DefaultPause = time.Second

// Options shape the demo; the zero value works.
type Options struct {
	Upgrades int           // live upgrades to perform; 0 means 5
	Pause    time.Duration // load between upgrades; 0 means 1s
	// Exe is the binary that runs the sample service as `Exe __demo-service
	// ADDR`; "" means this executable.
	Exe string
	Out io.Writer // progress and summary; nil means io.Discard
}

// Summary is what the demo saw.
type Summary struct {
	Upgrades int
	Load     loadtest.Result
	Cutovers []time.Duration // per upgrade: new generation ready → its first request answered
}

// Run starts a supervisor in proxy mode on a free loopback port with the
// sample service as its first generation, puts it under load (keep-alive
// clients sending GETs and POSTs, and a client opening a fresh connection
// for every request), upgrades it live opts.Upgrades times, and reports.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	if opts.Upgrades == 0 {
		opts.Upgrades = 5
	}
	if opts.Pause == 0 {
		opts.Pause = DefaultPause
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("demo: find own executable: %w", err)
		}
		opts.Exe = exe
	}
	out := opts.Out
	sup, err := supervisor.New(supervisor.Options{
		Listen:    []listener.Spec{{Name: "web", Addr: "127.0.0.1:0"}},
		Command:   []string{opts.Exe, ServiceArg, "{addr}"},
		Proxy:     true,
		Probation: 500 * time.Millisecond,
		Drain:     5 * time.Second,
		Logger:    slog.New(slog.DiscardHandler),
		Output:    io.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- sup.Run(ctx) }()
	defer func() { cancel(); <-runErr }()

	addr := sup.Addrs()[0]
	fmt.Fprintf(out, "graft demo: supervisor in proxy mode on http://%s, sample service as generation 1\n", addr)
	if err := sup.WaitFor(ctx, func(st *api.Status) bool { return st.Serving > 0 }); err != nil {
		return nil, fmt.Errorf("demo: first generation: %w", err)
	}
	load := loadtest.Start(ctx, loadtest.Options{URL: "http://" + addr + "/"})
	fmt.Fprintln(out, "graft demo: load started: 16 keep-alive clients (GET and POST) + 1 fresh connection per request")

	sum := &Summary{}
	for i := range opts.Upgrades {
		if err := pause(ctx, opts.Pause); err != nil {
			load.Stop()
			return nil, err
		}
		res, err := sup.Upgrade(ctx, nil)
		if err != nil {
			load.Stop()
			return nil, fmt.Errorf("demo: upgrade %d: %w", i+1, err)
		}
		sum.Upgrades++
		fmt.Fprintf(out, "graft demo: upgrade %d/%d: generation %d serves (ready in %.0f ms), generation %d parked; %d requests so far\n",
			i+1, opts.Upgrades, res.Generation, res.ReadyMS, res.Previous, load.Requests())
	}
	if err := pause(ctx, opts.Pause); err != nil {
		load.Stop()
		return nil, err
	}
	sum.Load = load.Stop()
	sum.Cutovers = cutovers(sup, sum.Load)
	printSummary(out, sum)
	return sum, nil
}

func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// cutovers pairs each upgraded generation's ready time with the first
// answer the load saw from it.
func cutovers(sup *supervisor.Supervisor, res loadtest.Result) []time.Duration {
	st := sup.Status()
	var out []time.Duration
	for _, g := range st.Generations {
		first, ok := res.FirstSeen[strconv.Itoa(g.Number)]
		if g.Number == 1 || !ok || g.Ready.IsZero() {
			continue
		}
		out = append(out, first.Sub(g.Ready))
	}
	slices.Sort(out)
	return out
}

func printSummary(w io.Writer, s *Summary) {
	r := s.Load
	fmt.Fprintln(w)
	fmt.Fprintln(w, "graft demo: summary")
	fmt.Fprintf(w, "  live upgrades        %d\n", s.Upgrades)
	fmt.Fprintf(w, "  requests             %d (%d POST)\n", r.Requests, r.Posts)
	fmt.Fprintf(w, "  failed requests      %d (keep-alive %d, fresh connections %d)\n", r.Failures(), r.KeepAliveFailures, r.FreshFailures)
	if len(s.Cutovers) > 0 {
		fmt.Fprintf(w, "  cutover (ready → first request served)  median %s, max %s\n",
			s.Cutovers[len(s.Cutovers)/2].Round(10*time.Microsecond), s.Cutovers[len(s.Cutovers)-1].Round(10*time.Microsecond))
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
}
