package cli

import (
	"context"
	"fmt"

	"github.com/graftdev/graft/internal/demo"
)

const demoHelp = `
Run graft's whole live-update story on a built-in sample service: a
supervisor in proxy mode on a free loopback port, load from 16 keep-alive
clients (GETs and POSTs, which are never retried) and one client opening a
fresh connection per request, several live upgrades, and a summary with the
number of failed requests (the goal is 0). Nothing is left running.`

func cmdDemo(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "demo", "demo [--upgrades N] [--pause DUR]", demoHelp)
	upgrades := fs.Int("upgrades", 5, "live upgrades to perform")
	pause := fs.Duration("pause", demo.DefaultPause, "load between upgrades")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	if *upgrades < 1 || *pause <= 0 {
		return fmt.Errorf("demo: --upgrades must be at least 1 and --pause positive")
	}
	sum, err := demo.Run(ctx, demo.Options{Upgrades: *upgrades, Pause: *pause, Out: env.Stdout})
	if err != nil {
		return err
	}
	if n := sum.Load.Failures(); n > 0 {
		return fmt.Errorf("demo: %d requests failed", n)
	}
	return nil
}

// cmdDemoService runs the demo's sample service; graft demo starts it as
// each generation's command.
func cmdDemoService(ctx context.Context, env *Env, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s: want ADDR", demo.ServiceArg)
	}
	svc := &demo.Service{Generation: env.Getenv("GRAFT_GENERATION")}
	return svc.Serve(ctx, args[0])
}
