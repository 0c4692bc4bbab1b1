package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/client"
	"github.com/graftdev/graft/internal/patch"
)

const patchUsage = `graft patch make|apply|list|revert ...

  make   --from OLD --to NEW [--with MODULE@OLD:NEW]... [--target BINARY] [--key FILE] [-o ARTIFACT] [--json]
  apply  ARTIFACT [--admin SOCK | --rt SOCK --pub FILE] [--wait DUR] [--json]
  list   [--admin SOCK | --rt SOCK] [--json]
  revert ID [--admin SOCK | --rt SOCK] [--json]

See docs/patch.md.`

func cmdPatch(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, "Usage: "+patchUsage)
		return ErrUsage
	}
	switch args[0] {
	case "make":
		return patchMake(ctx, env, args[1:])
	case "apply":
		return patchApply(ctx, env, args[1:])
	case "list":
		return patchList(ctx, env, args[1:])
	case "revert":
		return patchRevert(ctx, env, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(env.Stdout, "Usage: "+patchUsage)
		return errHelp
	}
	fmt.Fprintf(env.Stderr, "graft patch: unknown subcommand %q\n\nUsage: %s\n", args[0], patchUsage)
	return ErrUsage
}

func patchMake(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "patch make", "patch make --from OLD --to NEW [--with MODULE@OLD:NEW]... [--target BINARY] [--key FILE] [-o ARTIFACT] [--json]", `
Diff two versions of a source tree (directories, or MODULE@VERSION fetched
through the module proxy) function by function and decide whether the change
can be installed into a running program built with graft build. With
--target (the binary; its manifest BINARY.graft.json names the build and its
patch points) the plugin is built against exactly that build; with --key it
is signed, and ARTIFACT plus ARTIFACT.graft.json are what graft patch apply
takes. A fix that also bumps a dependency in go.mod (and lives partly in it)
is diffed together with that dependency's two versions (--with; the target
must instrument it). Exits non-zero when a change is refused, naming every
reason.`)
	from := fs.String("from", "", "the running version's source: `DIR` or MODULE@VERSION")
	to := fs.String("to", "", "the fixed version's source: `DIR` or MODULE@VERSION")
	target := fs.String("target", "", "the graft build `BINARY` the patch must fit (reads BINARY.graft.json)")
	manifest := fs.String("manifest", "", "the target's build manifest `FILE` (default BINARY.graft.json)")
	keyFile := fs.String("key", "", "ed25519 private key `FILE` (PEM, as graft alert keygen writes) to sign with")
	out := fs.String("o", "patch.so", "the plugin `ARTIFACT` to write")
	source := fs.String("source", "", "also write the generated plugin source to `FILE`")
	perCall := fs.Bool("per-call", false, "declare that the patch keeps state invariants: switch per call, no safe point")
	asJSON := fs.Bool("json", false, "print the admissibility report as JSON")
	var with []patch.Dependency
	fs.Func("with", "also diff dependency `MODULE@OLD:NEW` (versions or directories), repeatable", func(v string) error {
		mod, vers, ok := strings.Cut(v, "@")
		o, n, ok2 := strings.Cut(vers, ":")
		if !ok || !ok2 || mod == "" || o == "" || n == "" {
			return fmt.Errorf("want MODULE@OLD:NEW, got %q", v)
		}
		with = append(with, patch.Dependency{Module: mod, From: o, To: n})
		return nil
	})
	if err := parse(env, fs, args); err != nil {
		return err
	}
	if *from == "" || *to == "" || fs.NArg() > 0 {
		fmt.Fprintln(env.Stderr, "graft patch make: --from and --to are required, and nothing else")
		return ErrUsage
	}
	opts := patch.MakeOptions{From: *from, To: *to, With: with, Out: *out, PerCall: *perCall}
	mpath := *manifest
	if mpath == "" && *target != "" {
		mpath = *target + ".graft.json"
	}
	if mpath != "" {
		m, err := patchReadManifest(mpath)
		if err != nil {
			return err
		}
		opts.Target = m
		opts.Builder = &patch.InstrumentBuilder{Target: m}
	}
	if *keyFile != "" {
		k, err := patchReadPrivateKey(*keyFile)
		if err != nil {
			return err
		}
		opts.Key = k
	}
	a, err := patch.Make(ctx, opts)
	if a != nil && a.Report != nil {
		if *asJSON {
			if err := printJSON(env.Stdout, a.Report); err != nil {
				return err
			}
		} else {
			printPatchReport(env.Stdout, a.Report)
		}
	}
	if a != nil && a.Source != nil && *source != "" {
		if werr := os.WriteFile(*source, a.Source, 0o644); werr != nil {
			return fmt.Errorf("patch make: %w", werr)
		}
	}
	if err != nil {
		if errors.Is(err, patch.ErrNotAdmitted) {
			return fmt.Errorf("patch make: %w (see the refused changes above)", err)
		}
		return err
	}
	if !*asJSON {
		switch {
		case a.Signed != nil:
			fmt.Fprintf(env.Stdout, "wrote %s and %s (patch %s, %d slots, build %.12s)\n", *out, patch.ManifestPath(*out), a.Manifest.ID, len(a.Manifest.Slots), a.Manifest.BuildID)
		case a.Manifest != nil:
			fmt.Fprintf(env.Stdout, "wrote %s (unsigned: no --key; graft patch apply will refuse it)\n", *out)
		default:
			fmt.Fprintln(env.Stdout, "admitted; no --target given, so no plugin was built")
		}
	}
	return nil
}

func printPatchReport(w io.Writer, r *api.PatchReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range r.Changes {
		verdict := "ok"
		if !c.Admitted {
			verdict = "REFUSED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", verdict, c.Kind, c.Change, c.ID, c.Reason)
	}
	tw.Flush()
	verdict := "no"
	if r.Admitted {
		verdict = "yes"
	}
	fmt.Fprintf(w, "admitted: %s; slots: %s\n", verdict, strings.Join(r.Slots, ", "))
}

func patchReadManifest(path string) (*api.Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read build manifest: %w", err)
	}
	var m api.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read build manifest %s: %w", path, err)
	}
	return &m, nil
}

func patchReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	return api.ParsePrivateKey(b)
}

func patchReadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	return api.ParsePublicKey(b)
}

func patchApply(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "patch apply", "patch apply ARTIFACT [--admin SOCK | --rt SOCK --pub FILE] [--wait DUR] [--json]", `
Verify a patch (signature against the pinned key, plugin hash, target build)
and install it in the running program: through the supervisor (--admin; it
verifies with its own pinned key) or directly through the program's rt socket
(--rt, with --pub). Nothing reaches the program unless every check passes; a
patch that fails at any step leaves the program as it was.`)
	admin := adminFlag(env, fs)
	rtSock := fs.String("rt", "", "the program's rt admin `SOCK` (standalone, instead of --admin)")
	pubFile := fs.String("pub", "", "the pinned public key `FILE` (PEM); required with --rt, optional check with --admin")
	manifest := fs.String("manifest", "", "the running program's build manifest `FILE`: refuse a patch made for another build")
	wait := fs.Duration("wait", time.Second, "bound on the wait for a safe point")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseInterspersed(env, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.Stderr, "graft patch apply: one ARTIFACT")
		return ErrUsage
	}
	so := pos[0]
	var pub ed25519.PublicKey
	if *pubFile != "" {
		k, err := patchReadPublicKey(*pubFile)
		if err != nil {
			return err
		}
		pub = k
	}
	var buildID string
	if *manifest != "" {
		m, err := patchReadManifest(*manifest)
		if err != nil {
			return err
		}
		buildID = m.Build.ID
	}
	var info *api.PatchInfo
	if *rtSock != "" {
		if pub == nil {
			fmt.Fprintln(env.Stderr, "graft patch apply: --rt needs --pub (the key patches must be signed with)")
			return ErrUsage
		}
		info, err = patch.Apply(ctx, *rtSock, so, patch.ApplyOptions{Pub: pub, BuildID: buildID, Wait: *wait})
	} else {
		if pub != nil {
			if _, _, err := patch.Verify(so, pub, buildID); err != nil {
				return err
			}
		}
		abs, aerr := patchAbsPath(so)
		if aerr != nil {
			return aerr
		}
		info, err = client.New(*admin).PatchApply(ctx, api.PatchApply{Version: api.Version, Artifact: abs, WaitMS: wait.Milliseconds()})
	}
	if err != nil {
		return fmt.Errorf("patch apply: %w", err)
	}
	if *asJSON {
		return printJSON(env.Stdout, info)
	}
	fmt.Fprintf(env.Stdout, "installed patch %s (%d slots) in %.2f ms\n", info.ID, len(info.Slots), info.SafePointMS)
	return nil
}

func patchList(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "patch list", "patch list [--admin SOCK | --rt SOCK] [--json]", "List the patches installed in the running program.")
	admin := adminFlag(env, fs)
	rtSock := fs.String("rt", "", "the program's rt admin `SOCK` (standalone, instead of --admin)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	var l *api.PatchList
	var err error
	if *rtSock != "" {
		l, err = patch.List(ctx, *rtSock)
	} else {
		l, err = client.New(*admin).Patches(ctx)
	}
	if err != nil {
		return fmt.Errorf("patch list: %w", err)
	}
	if *asJSON {
		return printJSON(env.Stdout, l)
	}
	if len(l.Patches) == 0 {
		fmt.Fprintln(env.Stdout, "no patches installed")
	}
	for _, p := range l.Patches {
		fmt.Fprintf(env.Stdout, "%s\t%s\n", p.ID, strings.Join(p.Slots, ", "))
	}
	return nil
}

func patchRevert(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "patch revert", "patch revert ID [--admin SOCK | --rt SOCK] [--json]", "Restore the bodies a patch replaced (the most recent patch first).")
	admin := adminFlag(env, fs)
	rtSock := fs.String("rt", "", "the program's rt admin `SOCK` (standalone, instead of --admin)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(env, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.Stderr, "graft patch revert: one patch ID")
		return ErrUsage
	}
	var info *api.PatchInfo
	if *rtSock != "" {
		info, err = patch.Revert(ctx, *rtSock, pos[0])
	} else {
		info, err = client.New(*admin).PatchRevert(ctx, pos[0])
	}
	if err != nil {
		return fmt.Errorf("patch revert: %w", err)
	}
	if *asJSON {
		return printJSON(env.Stdout, info)
	}
	fmt.Fprintf(env.Stdout, "reverted patch %s\n", info.ID)
	return nil
}

func patchAbsPath(p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return wd + "/" + p, nil
}

// parseInterspersed parses flags that may follow the positional arguments
// (graft patch apply ARTIFACT --rt SOCK) and returns the positionals.
func parseInterspersed(env *Env, fs *flag.FlagSet, args []string) ([]string, error) {
	if err := parse(env, fs, args); err != nil {
		return nil, err
	}
	var pos []string
	for fs.NArg() > 0 {
		rest := fs.Args()
		pos = append(pos, rest[0])
		if err := fs.Parse(rest[1:]); err != nil {
			return nil, ErrUsage
		}
	}
	return pos, nil
}
