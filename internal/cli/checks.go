package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/client"
	"github.com/graftdev/graft/internal/checks"
)

const checksSynopsis = `checks list|on|off [--admin SOCK | --rt SOCK] [--json] [--alert FILE [--alert-key PUB]] [--limit N] [ID...]`

const checksHelp = `
List or switch the latent checks of a program built with graft build:
check sites (make, index, slice, div, assert, depth, loop), patch points
(switching a point on seals it) and the supervisor's request guards.

Under graft run, talks to the supervisor (--admin), which forwards to the
serving generation and keeps what was switched on for later generations.
A program running alone is reached on its own rt socket (--rt, the path in
its GRAFT_RT_SOCKET). 'on --alert FILE' switches on the checks a signed
alert names: the supervisor verifies it with its pinned key; with --rt,
--alert-key PUB is required and graft verifies it here.
IDs come from the manifest (OUT.graft.json) or 'graft checks list'.
`

func readPublicKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return api.ParsePublicKey(data)
}

func cmdChecks(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "checks", checksSynopsis, checksHelp)
	admin := adminFlag(env, fs)
	rtSock := fs.String("rt", "", "talk to a program's own rt admin `socket` instead of a supervisor")
	asJSON := fs.Bool("json", false, "print JSON (list)")
	alertFile := fs.String("alert", "", "signed alert `FILE` naming the checks to switch on")
	alertKey := fs.String("alert-key", "", "public key `FILE` to verify --alert with (needed with --rt)")
	limit := fs.Int64("limit", 0, "limit for the sites switched on (`N`: elements, nested calls or iterations; 0: the kind's default)")
	if len(args) == 0 {
		fs.Usage()
		return ErrUsage
	}
	verb := args[0]
	if strings.HasPrefix(verb, "-") {
		if err := parse(env, fs, args); err != nil {
			return err
		}
		fs.Usage()
		return ErrUsage
	}
	if err := parse(env, fs, args[1:]); err != nil {
		return err
	}
	ids := fs.Args()
	switch verb {
	case "list", "on", "off":
	default:
		fmt.Fprintf(env.Stderr, "graft checks: unknown verb %q\n", verb)
		fs.Usage()
		return ErrUsage
	}
	var alert *api.SignedAlert
	if *alertFile != "" {
		if verb != "on" {
			return errors.New("graft checks: --alert only with on")
		}
		data, err := os.ReadFile(*alertFile)
		if err != nil {
			return fmt.Errorf("graft checks: %w", err)
		}
		if alert, err = api.ParseAlert(data); err != nil {
			return fmt.Errorf("graft checks: %w", err)
		}
	}
	if verb != "list" && len(ids) == 0 && alert == nil {
		return errors.New("graft checks: name check ids or --alert")
	}

	if *rtSock != "" {
		return checksRT(ctx, env, checks.RT(*rtSock), verb, ids, alert, *alertKey, *limit, *asJSON)
	}
	c := client.New(*admin)
	if verb == "list" {
		l, err := c.Checks(ctx)
		if err != nil {
			return fmt.Errorf("graft checks: %w", err)
		}
		return printChecks(env, l, *asJSON)
	}
	res, err := c.SetChecks(ctx, api.ChecksSet{On: verb == "on", IDs: ids, Limit: *limit, Alert: alert})
	if err != nil {
		return fmt.Errorf("graft checks %s: %w", verb, err)
	}
	return printSet(env, verb, res.Changed, res.Unknown, *asJSON)
}

func checksRT(ctx context.Context, env *Env, r checks.RT, verb string, ids []string, alert *api.SignedAlert, keyFile string, limit int64, asJSON bool) error {
	if verb == "list" {
		resp, err := r.Do(ctx, api.RTRequest{Op: "list"})
		if err != nil {
			return fmt.Errorf("graft checks: %w", err)
		}
		if resp.List == nil {
			return errors.New("graft checks: rt answered without a list")
		}
		return printChecks(env, resp.List, asJSON)
	}
	if alert != nil {
		if keyFile == "" {
			return errors.New("graft checks: --alert with --rt needs --alert-key (the program does not verify alerts itself)")
		}
		pub, err := readPublicKey(keyFile)
		if err != nil {
			return fmt.Errorf("graft checks: %w", err)
		}
		body, err := alert.Verify(pub, time.Now())
		if err != nil {
			return fmt.Errorf("graft checks: %w", err)
		}
		ids = append(ids, body.CheckIDs()...)
	}
	resp, err := r.Do(ctx, api.RTRequest{Op: verb, IDs: ids, Limit: limit})
	if err != nil {
		return fmt.Errorf("graft checks %s: %w", verb, err)
	}
	return printSet(env, verb, resp.Changed, resp.Unknown, asJSON)
}

func printSet(env *Env, verb string, changed, unknown []string, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(api.ChecksResult{Version: api.Version, Changed: changed, Unknown: unknown})
	}
	for _, id := range changed {
		fmt.Fprintf(env.Stdout, "%s %s\n", verb, id)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("graft checks %s: unknown ids: %s", verb, strings.Join(unknown, ", "))
	}
	return nil
}

func printChecks(env *Env, l *api.CheckList, asJSON bool) error {
	if asJSON {
		l.Version = api.Version
		if l.Checks == nil {
			l.Checks = []api.Check{}
		}
		return printJSON(env.Stdout, l)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tON\tWHERE")
	for _, c := range l.Checks {
		on := "-"
		if c.On {
			on = "on"
			if c.Kind == "point" {
				on = "sealed"
			}
		}
		if c.Patched {
			on += ",patched"
		}
		where := ""
		if c.File != "" {
			where = fmt.Sprintf("%s:%d", c.File, c.Line)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, c.Kind, on, where)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if l.Stopped+l.SealedCalls+l.Recovered > 0 {
		fmt.Fprintf(env.Stdout, "stopped %d failures, answered %d sealed calls, %d errors recovered\n", l.Stopped, l.SealedCalls, l.Recovered)
	}
	return nil
}
