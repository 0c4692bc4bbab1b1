package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/client"
	"github.com/graftdev/graft/internal/shadow"
	"github.com/graftdev/graft/internal/shadow/differ"
)

const shadowHelp = `
Prove a candidate (the patched version) on live traffic while the serving
version keeps control. The supervisor (graft run --proxy) starts CMD as the
candidate and a second instance of the serving version (the secondary), and
mirrors each sampled live request to both, asynchronously: clients always get
the primary's answer at the primary's latency. A worker process at the lanes'
priority asks them and compares the three answers field by field (status,
headers, JSON bodies by path); differences the
secondary also shows are noise. A route fails as soon as one of its fields
differs significantly more often than its noise; it passes when enough
requests were compared with no divergence to rule out --target-rate at 95%.

Only GET, HEAD and OPTIONS are mirrored unless --mirror-methods widens it:
a mirrored POST runs its side effect twice more (candidate and secondary).

The run ends after --requests compared requests, after --for, on a fail, on
'graft shadow stop' or Ctrl-C; with neither limit it ends when the verdict is
decided. Progress goes to stderr, the report to stdout. Exit status: 0 pass,
1 fail, 3 undecided. --promote upgrades to the candidate on pass.

  graft shadow stop [--admin SOCK] [--json]   end the run, print its report
`

// verdictError carries a run's verdict as the process's exit status.
type verdictError struct {
	verdict, reason string
}

func (e *verdictError) Error() string {
	return fmt.Sprintf("shadow verdict %s: %s", e.verdict, e.reason)
}

func (e *verdictError) ExitCode() int {
	if e.verdict == api.VerdictFail {
		return 1
	}
	return 3
}

func cmdShadow(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 && args[0] == "stop" {
		return cmdShadowStop(ctx, env, args[1:])
	}
	fs := newFlags(env, "shadow", "shadow [--admin SOCK] [--requests N] [--for DUR] [--sample RATE] [--mirror-methods M,...] [--lane-priority idle|normal] [--promote] -- CMD [ARG...]", shadowHelp)
	admin := adminFlag(env, fs)
	requests := fs.Int("requests", 0, "end after `N` compared requests (0: no limit)")
	dur := fs.Duration("for", 0, "end after `DUR` (0: no limit)")
	sample := fs.Float64("sample", 1, "mirror this `fraction` of eligible requests")
	methods := fs.String("mirror-methods", "", "comma-separated `methods` to mirror instead of GET,HEAD,OPTIONS (side effects run again on both lanes)")
	promote := fs.Bool("promote", false, "upgrade to the candidate on pass; stop it on fail")
	target := fs.Float64("target-rate", 0.01, "regression `rate` a pass must rule out at 95% confidence")
	var routes, ignoreHeaders, ignoreFields multiFlag
	fs.Var(&routes, "route", "route `template` overriding inference, e.g. 'GET /users/{name}' (repeatable)")
	fs.Var(&ignoreHeaders, "ignore-header", "response `header` never compared, besides Date and the like (repeatable)")
	fs.Var(&ignoreFields, "ignore-field", "field `path` never compared, e.g. body.meta.took (repeatable)")
	lanePrio := fs.String("lane-priority", shadow.PriorityIdle, "CPU `priority` of the candidate, the secondary and the worker process that compares: idle (SCHED_IDLE, nice 19 where refused: they only get CPU the service leaves, and what they cannot take is dropped) or normal")
	secondary := fs.String("secondary", "", "`command` line of the secondary, split on spaces (default: the serving generation's)")
	detach := fs.Bool("detach", false, "start the run and return; see it with graft report")
	asJSON := fs.Bool("json", false, "print the final report as JSON")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	cmd := fs.Args()
	if len(cmd) == 0 {
		fmt.Fprintln(env.Stderr, "graft shadow: no candidate command (graft shadow [flags] -- CMD [ARG...])")
		return ErrUsage
	}
	if *sample <= 0 || *sample > 1 {
		fmt.Fprintln(env.Stderr, "graft shadow: --sample must be in (0, 1]")
		return ErrUsage
	}
	if *lanePrio != shadow.PriorityIdle && *lanePrio != shadow.PriorityNormal {
		fmt.Fprintln(env.Stderr, "graft shadow: --lane-priority must be idle or normal")
		return ErrUsage
	}
	req := api.ShadowRequest{
		Command: absCommand(cmd), Requests: *requests, ForMS: dur.Milliseconds(), Sample: *sample,
		Promote: *promote, Routes: routes, IgnoreHeaders: ignoreHeaders, IgnoreFields: ignoreFields, TargetRate: *target,
		LanePriority: *lanePrio,
	}
	if *methods != "" {
		for _, m := range strings.Split(*methods, ",") {
			if m = strings.ToUpper(strings.TrimSpace(m)); m != "" {
				req.MirrorMethods = append(req.MirrorMethods, m)
			}
		}
	}
	if *secondary != "" {
		req.Secondary = absCommand(strings.Fields(*secondary))
	}
	c := client.New(*admin)
	if _, err := c.StartShadow(ctx, req); err != nil {
		return err
	}
	if *detach {
		fmt.Fprintf(env.Stdout, "shadow started: candidate %s (graft report to follow it, graft shadow stop to end it)\n", strings.Join(req.Command, " "))
		return nil
	}
	rep, err := follow(ctx, env, c)
	if err != nil {
		return err
	}
	return finalReport(env, rep, *asJSON)
}

// follow polls the report, printing progress to stderr, until the run is
// done; on ctx's end (Ctrl-C) it stops the run and returns its report.
func follow(ctx context.Context, env *Env, c *client.Client) (*api.Report, error) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			fmt.Fprintln(env.Stderr, "shadow: stopping")
			return c.StopShadow(sctx)
		case <-tick.C:
		}
		rep, err := c.Report(ctx)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return nil, err
		}
		if rep.State == api.ShadowDone {
			return rep, nil
		}
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			fmt.Fprintf(env.Stderr, "shadow: %s, compared %d of %d mirrored (%d dropped), %s\n",
				rep.State, rep.Compared, rep.Mirrored, rep.Dropped, rep.Verdict)
		}
	}
}

func finalReport(env *Env, rep *api.Report, asJSON bool) error {
	if asJSON {
		if err := printJSON(env.Stdout, rep); err != nil {
			return err
		}
	} else if err := differ.WriteText(env.Stdout, rep); err != nil {
		return err
	}
	if rep.Ended == "error" {
		return errors.New("shadow: " + rep.Reason)
	}
	if rep.Verdict != api.VerdictPass {
		return &verdictError{verdict: rep.Verdict, reason: rep.Reason}
	}
	return nil
}

// absCommand makes a relative program path absolute, so that the
// supervisor, whose working directory may differ, runs the file meant here.
func absCommand(cmd []string) []string {
	out := append([]string(nil), cmd...)
	if p := out[0]; strings.Contains(p, "/") && !filepath.IsAbs(p) {
		if abs, err := filepath.Abs(p); err == nil {
			if _, err := os.Stat(abs); err == nil {
				out[0] = abs
			}
		}
	}
	return out
}

func cmdShadowStop(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "shadow stop", "shadow stop [--admin SOCK] [--json]", "End the current shadow run and print its report.")
	admin := adminFlag(env, fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	rep, err := client.New(*admin).StopShadow(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, rep)
	}
	return differ.WriteText(env.Stdout, rep)
}

const reportHelp = `
Show the current or last shadow run's comparison and verdict: per route the
compared requests, how many answers differed from the primary's for the
candidate (diffs) and for the secondary (noise), and per field the counts and
the test's p-value. --json prints the document described in docs/shadow.md;
--html the page the admin API serves at /v1/report.html.
`

func cmdReport(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "report", "report [--admin SOCK] [--json | --html]", reportHelp)
	admin := adminFlag(env, fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	asHTML := fs.Bool("html", false, "print the report as an HTML page")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	c := client.New(*admin)
	if *asHTML {
		page, err := c.ReportHTML(ctx)
		if err != nil {
			return err
		}
		_, err = env.Stdout.Write(page)
		return err
	}
	rep, err := c.Report(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, rep)
	}
	return differ.WriteText(env.Stdout, rep)
}
