// Package cli implements graft's subcommands. Each subcommand lives in its
// own file with its flags and help text; commands that talk to a supervisor
// do so only through package client.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/graftdev/graft/internal/demo"
)

// ErrUsage marks an error whose message has already been printed together
// with usage; main exits 2 without printing it again.
var ErrUsage = errors.New("usage")

// Env is what a subcommand may touch of the outside world.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

type command struct {
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// commands is the table of subcommands; help lists them in this order.
var commands = map[string]command{
	"run":      {"supervise a service: own its sockets, start generations", cmdRun},
	"upgrade":  {"start the next generation and cut over to it", cmdUpgrade},
	"rollback": {"go back to the parked generation", cmdRollback},
	"status":   {"show generations, states and recent events", cmdStatus},
	"shadow":   {"run a candidate beside the serving version on live traffic", cmdShadow},
	"report":   {"show the shadow comparison and its verdict", cmdReport},
	"seal":     {"list, add or remove seal rules", cmdSeal},
	"checks":   {"list, switch on or off latent checks", cmdChecks},
	"build":    {"build a Go program instrumented for checks and patching", cmdBuild},
	"test":     {"go test with the same instrumentation", cmdTest},
	"alert":    {"make keys, sign and verify advisories that switch checks on", cmdAlert},
	"patch":    {"make, apply, revert and list in-process patches", cmdPatch},
	"demo":     {"the whole live-update story on a built-in sample service", cmdDemo},
	"version":  {"print graft's version", cmdVersion},
}

var order = []string{"run", "upgrade", "rollback", "status", "shadow", "report", "seal", "checks", "alert", "build", "test", "patch", "demo", "version"}

// Run runs graft with args (without the program name).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, &Env{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}, args)
}

func run(ctx context.Context, env *Env, args []string) error {
	stdout, stderr := env.Stdout, env.Stderr
	if len(args) == 0 {
		usage(stderr)
		return ErrUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if _, ok := commands[args[1]]; ok {
				args = []string{args[1], "--help"}
				name = args[0]
				break
			}
		}
		usage(stdout)
		return nil
	}
	if name == demo.ServiceArg {
		return cmdDemoService(ctx, env, args[1:])
	}
	if name == shadowWorkerArg { // hidden: graft shadow's worker process (shadow_worker.go)
		return cmdShadowWorker(ctx, env, args[1:])
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "graft: unknown command %q\n\n", name)
		usage(stderr)
		return ErrUsage
	}
	if err := cmd.run(ctx, env, args[1:]); !errors.Is(err, errHelp) {
		return err
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "graft: runtime software patching for services.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: graft COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	if len(order) != len(commands) {
		panic("cli: order and commands disagree")
	}
	for _, name := range order {
		fmt.Fprintf(w, "  %-9s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'graft COMMAND --help' for a command's flags. Docs: docs/cli.md")
}

// newFlags makes a FlagSet whose --help prints synopsis, description and
// flags to stdout, and whose errors print to stderr.
func newFlags(env *Env, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: graft %s\n\n", synopsis)
		if description != "" {
			fmt.Fprintln(w, strings.TrimSpace(description))
			fmt.Fprintln(w)
		}
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(w, "Flags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args; --help prints usage to stdout and returns errHelp,
// which callers return as is (Run maps it to a nil error).
func parse(env *Env, fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(env.Stdout)
			fs.Usage()
			return errHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return ErrUsage
	}
	return nil
}

// errHelp is returned by parse after printing help; Run treats it as success.
var errHelp = errors.New("help shown")

// printJSON writes v as the indented JSON every --json output uses.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// errNotYet marks a command whose implementation has not landed yet.
var errNotYet = errors.New("not implemented yet")
