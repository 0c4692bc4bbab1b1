package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/client"
	"github.com/graftdev/graft/internal/heal/rule"
)

const sealHelp = `
Manage the seal rules of a supervisor in proxy mode. A request matching a
rule is answered (default 503, a JSON body naming the rule) without
reaching the service. Rules are derived from crashes automatically and can
be added by hand; they persist across supervisor restarts and expire.

  graft seal list [--json]
  graft seal add [--status N] [--reason TEXT] [--ttl DUR] [--json] RULE
  graft seal rm [--json] ID...

RULE is METHOD PATH [PREDICATE]..., for example
  graft seal add 'POST /items/{} type(json.tags)=null len(json.labels)=1..'
Predicates: SUBJECT (present), !SUBJECT (absent), SUBJECT=VALUE,
len(SUBJECT)=LO..HI, kind(SUBJECT)=KIND, type(SUBJECT)=TYPE, depth(json)=LO..HI;
SUBJECT is query.NAME, header.NAME, body (len only), json or json.PATH
(with [] for array elements). See docs/heal.md.

--json prints api.SealList, api.SealAddResult or {"version":1,"removed":[...]}.
`

func cmdSeal(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlags(env, "seal", "seal list|add|rm [--admin SOCK] [--json] ...", sealHelp)
		if err := parse(env, fs, args); err != nil {
			return err
		}
		fmt.Fprintln(env.Stderr, "graft seal: want a subcommand: list, add or rm")
		fs.Usage()
		return ErrUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list", "ls":
		return sealList(ctx, env, args)
	case "add":
		return sealAdd(ctx, env, args)
	case "rm", "remove":
		return sealRemove(ctx, env, args)
	}
	fmt.Fprintf(env.Stderr, "graft seal: unknown subcommand %q (want list, add or rm)\n", sub)
	return ErrUsage
}

func sealList(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "seal list", "seal list [--admin SOCK] [--json]", sealHelp)
	admin := adminFlag(env, fs)
	asJSON := fs.Bool("json", false, "print api.SealList as JSON")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(env.Stderr, "graft seal list: takes no arguments")
		return ErrUsage
	}
	l, err := client.New(*admin).SealList(ctx)
	if err != nil {
		return fmt.Errorf("seal list: %w", err)
	}
	if *asJSON {
		return printJSON(env.Stdout, l)
	}
	printRules(env, l.Rules, time.Now())
	return nil
}

func printRules(env *Env, rules []api.SealRule, now time.Time) {
	if len(rules) == 0 {
		fmt.Fprintln(env.Stdout, "no seal rules")
		return
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tHITS\tSOURCE\tAGE\tEXPIRES\tMATCH")
	for _, r := range rules {
		exp := "never"
		if !r.Expires.IsZero() {
			exp = "in " + r.Expires.Sub(now).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.Hits, r.Source,
			now.Sub(r.Created).Round(time.Second), exp, r.Match)
	}
	tw.Flush()
	for _, r := range rules {
		if r.Reason != "" {
			fmt.Fprintf(env.Stdout, "%s: %s\n", r.ID, r.Reason)
		}
	}
}

func sealAdd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "seal add", "seal add [--admin SOCK] [--status N] [--reason TEXT] [--ttl DUR] [--json] RULE", sealHelp)
	admin := adminFlag(env, fs)
	asJSON := fs.Bool("json", false, "print api.SealAddResult as JSON")
	status := fs.Int("status", 0, "status of the sealed answer (4xx or 5xx; default the supervisor's, 503)")
	reason := fs.String("reason", "", "why the rule exists (shown by seal list)")
	ttl := fs.String("ttl", "", "how long the rule lives (Go duration; 0 = never; default the supervisor's, 24h)")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	text := strings.Join(fs.Args(), " ")
	if text == "" {
		fmt.Fprintln(env.Stderr, "graft seal add: want a RULE, e.g. 'POST /items/{} json.tags=null'")
		return ErrUsage
	}
	// Check the syntax here, so a typo is reported without a supervisor.
	if _, err := rule.Parse(text); err != nil {
		return fmt.Errorf("seal add: %w", err)
	}
	if *ttl != "" {
		if _, err := time.ParseDuration(*ttl); err != nil {
			return fmt.Errorf("seal add: --ttl: %w", err)
		}
	}
	res, err := client.New(*admin).SealAdd(ctx, api.SealAddRequest{Match: text, Status: *status, Reason: *reason, TTL: *ttl})
	if err != nil {
		return fmt.Errorf("seal add: %w", err)
	}
	if *asJSON {
		return printJSON(env.Stdout, res)
	}
	verb := "installed"
	if res.Existed {
		verb = "already installed"
	}
	fmt.Fprintf(env.Stdout, "%s %s: %s\n", verb, res.Rule.ID, res.Rule.Match)
	return nil
}

// sealRemoved is the --json output of seal rm.
type sealRemoved struct {
	Version int      `json:"version"`
	Removed []string `json:"removed"`
}

func sealRemove(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "seal rm", "seal rm [--admin SOCK] [--json] ID...", sealHelp)
	admin := adminFlag(env, fs)
	asJSON := fs.Bool("json", false, `print {"version":1,"removed":[IDs]}`)
	if err := parse(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(env.Stderr, "graft seal rm: want rule IDs (see graft seal list)")
		return ErrUsage
	}
	c := client.New(*admin)
	out := sealRemoved{Version: api.Version, Removed: []string{}}
	var errs []error
	for _, id := range fs.Args() {
		if err := c.SealRemove(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("seal rm %s: %w", id, err))
			continue
		}
		out.Removed = append(out.Removed, id)
		if !*asJSON {
			fmt.Fprintf(env.Stdout, "removed %s\n", id)
		}
	}
	if *asJSON {
		if err := printJSON(env.Stdout, out); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}
