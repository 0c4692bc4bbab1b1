package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/client"
)

const statusHelp = `
Show the supervisor's generations (pid, state, uptime, requests served in
proxy mode) and its recent events. --json prints api.Status (version 1).
`

func cmdStatus(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "status", "status [--admin SOCK] [--json] [--events N]", statusHelp)
	admin := adminFlag(env, fs)
	asJSON := fs.Bool("json", false, "print api.Status as JSON")
	nEvents := fs.Int("events", 10, "how many recent events to show")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	st, err := client.New(*admin).Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, st)
	}
	printStatus(env, st, *nEvents, time.Now())
	return nil
}

func printStatus(env *Env, st *api.Status, nEvents int, now time.Time) {
	w := env.Stdout
	serving := "none"
	if st.Serving != 0 {
		serving = fmt.Sprintf("generation %d", st.Serving)
	}
	fmt.Fprintf(w, "supervisor pid %d, %s mode, serving: %s", st.PID, st.Mode, serving)
	if st.Upgrading {
		fmt.Fprint(w, " (upgrade in progress)")
	}
	fmt.Fprintln(w)
	if st.Parked != 0 {
		fmt.Fprintf(w, "parked for rollback: generation %d", st.Parked)
		if !st.ProbationEnds.IsZero() {
			fmt.Fprintf(w, " (probation ends in %s)", st.ProbationEnds.Sub(now).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	var ls []string
	for _, l := range st.Listeners {
		ls = append(ls, l.Name+"="+l.Addr)
	}
	fmt.Fprintf(w, "listeners: %s\n\n", strings.Join(ls, " "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	proxy := st.Mode == "proxy"
	if proxy {
		fmt.Fprintln(tw, "GEN\tPID\tSTATE\tUPTIME\tREQUESTS\tADDR\tCOMMAND")
	} else {
		fmt.Fprintln(tw, "GEN\tPID\tSTATE\tUPTIME\tCOMMAND")
	}
	for _, g := range st.Generations {
		gen := fmt.Sprint(g.Number)
		if g.Role != "" {
			gen += " (" + g.Role + ")"
		}
		up := "-"
		switch {
		case !g.Exited.IsZero():
			up = "exited " + g.Exited.Sub(g.Started).Round(time.Millisecond).String()
			if g.ExitError != "" {
				up += " (" + g.ExitError + ")"
			}
		case !g.Started.IsZero():
			up = now.Sub(g.Started).Round(time.Second).String()
		}
		cmd := strings.Join(g.Command, " ")
		if proxy {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", gen, g.PID, g.State, up, g.Requests, g.Addr, cmd)
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", gen, g.PID, g.State, up, cmd)
		}
	}
	tw.Flush()
	if nEvents <= 0 || len(st.Events) == 0 {
		return
	}
	fmt.Fprintln(w, "\nrecent events:")
	evs := st.Events
	if len(evs) > nEvents {
		evs = evs[len(evs)-nEvents:]
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range evs {
		gen := "-"
		if e.Generation != 0 {
			gen = fmt.Sprintf("gen %d", e.Generation)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Time.Local().Format("15:04:05.000"), gen, e.Kind, e.Message)
	}
	tw.Flush()
}
