package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/graftdev/graft/internal/instrument"
)

const buildHelp = `
Build Go packages instrumented for graft: every function gets a patch point
(graft patch, sealing by the self-healing loop) and latent check sites
(graft checks), shipped dormant. Sources and go.mod are not touched: the
rewritten files go into graft's cache and reach the compiler through
go build -overlay and -modfile. Every other flag and argument goes to
go build as is. The manifest (default OUT.graft.json) lists points, sites and
skipped functions. See docs/build.md and docs/manifest.md.

Flags:
  -o OUT               output file (passed to go build)
  --manifest FILE      where to write the manifest (default OUT.graft.json)
  --instrument PATTERN also instrument these import paths (repeatable)
  --patchable          link rt/rtplugin (plugin loading for graft patch; needs cgo)
  --budget N           functions the compiler inlines get no patch point; N is the leaf budget in
                       syntax nodes used when the compiler cannot be asked (default 40);
                       -1 gives every function a patch point
  --no-sites           patch points only, no latent check sites
  -x                   print the go command
`

const testHelp = `
Run go test on packages instrumented the same way as graft build. Every
flag and argument other than graft's goes to go test as is.

Flags:
  --instrument PATTERN also instrument these import paths (repeatable)
  --budget N, --no-sites, --patchable, -x: as for graft build
  --manifest FILE      also write the manifest
`

// goValueFlags are go build/test flags that take a separate value.
var goValueFlags = map[string]bool{
	"o": true, "p": true, "C": true, "asmflags": true, "buildmode": true, "compiler": true, "gccgoflags": true,
	"gcflags": true, "installsuffix": true, "ldflags": true, "mod": true, "modfile": true, "overlay": true,
	"pgo": true, "pkgdir": true, "tags": true, "toolexec": true, "covermode": true, "coverpkg": true,
	"run": true, "bench": true, "count": true, "timeout": true, "cpu": true, "parallel": true, "benchtime": true,
	"coverprofile": true, "cpuprofile": true, "memprofile": true, "blockprofile": true, "mutexprofile": true,
	"outputdir": true, "trace": true, "fuzz": true, "fuzztime": true, "fuzzminimizetime": true, "shuffle": true,
	"list": true, "skip": true, "exec": true, "memprofilerate": true, "blockprofilerate": true, "mutexprofilefraction": true,
	"vet": true, "failfast": false, "benchmem": false,
}

// buildArgs is the split command line of graft build / graft test.
type buildArgs struct {
	out, manifest string
	instrument    []string
	patchable     bool
	budget        int
	noSites       bool
	trace         bool
	pass          []string // to go, in order
	flags         []string // go build flags (for the instrumentation's go list/go/packages and the build id)
	packages      []string
	after         []string // -args and what follows (go test)
}

func parseBuildArgs(args []string, test bool) (*buildArgs, error) {
	a := &buildArgs{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if test && (arg == "-args" || arg == "--args") {
			a.after = args[i:]
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			a.packages = append(a.packages, arg)
			a.pass = append(a.pass, arg)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag -%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		switch name {
		case "manifest", "instrument", "budget":
			v, err := value()
			if err != nil {
				return nil, err
			}
			switch name {
			case "manifest":
				a.manifest = v
			case "instrument":
				a.instrument = append(a.instrument, v)
			case "budget":
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("--budget: %w", err)
				}
				a.budget = n
			}
			continue
		case "patchable":
			a.patchable = true
			continue
		case "no-sites":
			a.noSites = true
			continue
		case "x":
			a.trace = true
		}
		if goValueFlags[name] && !hasVal {
			v, err := value()
			if err != nil {
				return nil, err
			}
			if name == "o" {
				a.out = v
			}
			a.pass = append(a.pass, "-"+name, v)
			a.flags = append(a.flags, "-"+name, v)
			continue
		}
		if name == "o" {
			a.out = val
		}
		a.pass = append(a.pass, arg)
		a.flags = append(a.flags, arg)
	}
	return a, nil
}

// buildOnlyFlags are flags of go build/test that must not reach the
// instrumentation's go list (output and test-run flags).
func instrumentFlags(flags []string) []string {
	var out []string
	for i := 0; i < len(flags); i++ {
		name, _, hasVal := strings.Cut(strings.TrimLeft(flags[i], "-"), "=")
		switch name {
		case "tags", "mod", "race", "msan", "asan", "cover", "gcflags", "ldflags", "asmflags", "trimpath", "buildvcs", "pgo", "covermode", "coverpkg":
			out = append(out, flags[i])
			if !hasVal && goValueFlags[name] && i+1 < len(flags) {
				i++
				out = append(out, flags[i])
			}
		default:
			if !hasVal && goValueFlags[name] {
				i++
			}
		}
	}
	return out
}

func cmdBuild(ctx context.Context, env *Env, args []string) error {
	return runGoInstrumented(ctx, env, args, false)
}

func cmdTest(ctx context.Context, env *Env, args []string) error {
	return runGoInstrumented(ctx, env, args, true)
}

func runGoInstrumented(ctx context.Context, env *Env, args []string, test bool) error {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			if test {
				fmt.Fprintf(env.Stdout, "Usage: graft test [--instrument PATTERN]... [go test flags] [packages]\n%s", testHelp)
			} else {
				fmt.Fprintf(env.Stdout, "Usage: graft build [-o OUT] [--manifest FILE] [--instrument PATTERN]... [go build flags] [packages]\n%s", buildHelp)
			}
			return errHelp
		}
		if a == "-args" || a == "--args" {
			break
		}
	}
	a, err := parseBuildArgs(args, test)
	if err != nil {
		fmt.Fprintf(env.Stderr, "graft: %v\n", err)
		return ErrUsage
	}
	logger := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := instrument.Options{
		Patterns:   a.packages,
		Instrument: a.instrument,
		Flags:      instrumentFlags(a.flags),
		Tests:      test,
		Patchable:  a.patchable,
		Logger:     logger,
	}
	opts.Rewrite.Budget = a.budget
	opts.Rewrite.NoSites = a.noSites
	b, err := instrument.Prepare(ctx, opts)
	if err != nil {
		return fmt.Errorf("graft %s: %w", map[bool]string{true: "test", false: "build"}[test], err)
	}
	verb := "build"
	if test {
		verb = "test"
	}
	pass := append(append([]string(nil), a.pass...), a.after...)
	cmd, err := b.CommandOwnFlags(ctx, verb, pass...)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr, cmd.Stdin = env.Stdout, env.Stderr, os.Stdin
	if a.trace {
		fmt.Fprintln(env.Stderr, strings.Join(cmd.Args, " "))
	}
	manifest := a.manifest
	if manifest == "" && !test {
		out := a.out
		if out == "" {
			out = defaultOutput(a.packages)
		}
		if out != "" {
			if fi, err := os.Stat(out); err == nil && fi.IsDir() {
				out = filepath.Join(out, defaultOutput(a.packages))
			}
			manifest = out + ".graft.json"
		}
	}
	if a.out != "" {
		if abs, err := filepath.Abs(a.out); err == nil {
			b.Manifest.Build.Output = abs
		}
	}
	runErr := cmd.Run()
	if manifest != "" && runErr == nil {
		if err := b.WriteManifest(manifest); err != nil {
			return err
		}
	}
	if runErr != nil {
		var ee interface{ ExitCode() int }
		if errors.As(runErr, &ee) {
			return fmt.Errorf("go %s failed (exit %d)", verb, ee.ExitCode())
		}
		return fmt.Errorf("go %s: %w", verb, runErr)
	}
	return nil
}

// defaultOutput is go build's default output name for a single package.
func defaultOutput(pkgs []string) string {
	p := "."
	if len(pkgs) == 1 {
		p = pkgs[0]
	} else if len(pkgs) > 1 {
		return ""
	}
	if p == "." || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || filepath.IsAbs(p) {
		abs, err := filepath.Abs(p)
		if err != nil {
			return ""
		}
		return filepath.Base(abs)
	}
	elem := filepath.Base(p)
	if len(elem) >= 2 && elem[0] == 'v' && strings.Trim(elem[1:], "0123456789") == "" {
		elem = filepath.Base(filepath.Dir(p))
	}
	return elem
}
