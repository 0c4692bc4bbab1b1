package patch

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/patch/diff"
	"github.com/graftdev/graft/internal/patch/plugingen"
)

// ErrUnsupported wraps what the plugin generator cannot express (an
// admitted change Make could not turn into plugin code).
var ErrUnsupported = plugingen.ErrUnsupported

// ErrNotAdmitted is returned by Make when the diff has a refused change.
var ErrNotAdmitted = errors.New("patch not admitted")

// PluginBuilder builds plugin source into a .so against the target's exact
// build and returns that build's id. The instrument-backed one is
// InstrumentBuilder.
type PluginBuilder interface {
	BuildPlugin(ctx context.Context, pkgName string, src []byte, out string) (buildID string, err error)
}

// MakeOptions says what to diff and where the artifact goes.
type MakeOptions struct {
	From, To string        // directories, or MODULE@VERSION fetched through the module proxy
	Target   *api.Manifest // the target build's manifest: which functions have patch points
	Builder  PluginBuilder // nil: stop after generating the source
	Key      ed25519.PrivateKey
	Out      string // the plugin file; the signed manifest goes to Out + ".graft.json"
	WorkDir  string // for fetched modules; default a temp dir removed afterwards
	PerCall  bool   // the patch declares it keeps state invariants: no safe point needed
	// With are dependencies diffed along with the tree, for a fix that
	// spans a module and a dependency it bumps in go.mod (gjson and
	// tidwall/match): their old and new versions replace the required ones
	// in the old and new tree, their packages join the diff, and the
	// requirement change is admitted. The target build must instrument them.
	With []Dependency
	// Load says how to load directory trees (package patterns, -mod=mod for
	// private copies); fetched modules always use -mod=mod.
	Load LoadOptions
}

// Dependency is a module diffed along with the tree: From and To are
// directories or versions of Module.
type Dependency struct {
	Module, From, To string
}

// Artifact is what Make produced.
type Artifact struct {
	Report   *api.PatchReport
	Source   []byte             // generated plugin source (nil when not admitted)
	Manifest *api.PatchManifest // nil unless built
	Signed   *api.SignedPatch   // nil unless built and signed
	// Timings of the steps, for bench/patch.
	LoadDur, DiffDur, GenDur, BuildDur time.Duration
}

// ManifestPath is where the signed manifest of plugin file so lives.
func ManifestPath(so string) string { return so + ".graft.json" }

// HasPointIn answers Options.HasPoint from a graft build manifest.
func HasPointIn(m *api.Manifest) func(string) (bool, string) {
	points := map[string]bool{}
	skipped := map[string]string{}
	for _, p := range m.Points {
		points[p.ID] = true
	}
	for _, s := range m.Skipped {
		skipped[s.ID] = s.Reason
	}
	return func(id string) (bool, string) {
		if points[id] {
			return true, ""
		}
		if r, ok := skipped[id]; ok {
			return false, r
		}
		return false, "not in the target build's manifest (package not instrumented?)"
	}
}

// Make diffs, checks admissibility, generates the plugin and, with a
// builder and a key, builds and signs the artifact.
func Make(ctx context.Context, opts MakeOptions) (*Artifact, error) {
	work := opts.WorkDir
	if work == "" {
		dir, err := os.MkdirTemp("", "graft-patch-")
		if err != nil {
			return nil, fmt.Errorf("make patch: %w", err)
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	a := &Artifact{}
	start := time.Now()
	oldLoad, newLoad := opts.Load, opts.Load
	if env := targetEnv(opts.Target); env != nil {
		// Types, layouts and escape summaries are the target's: a 386
		// program has 4-byte ints and pointers whatever graft runs on.
		oldLoad.Env = append(slices.Clip(oldLoad.Env), env...)
		newLoad.Env = append(slices.Clip(newLoad.Env), env...)
	}
	for _, d := range opts.With {
		if oldLoad.Replace == nil {
			oldLoad.Replace, newLoad.Replace = map[string]string{}, map[string]string{}
		}
		for _, side := range []struct {
			spec string
			into map[string]string
		}{{d.From, oldLoad.Replace}, {d.To, newLoad.Replace}} {
			dir, err := openDir(ctx, d.Module, side.spec, work)
			if err != nil {
				return nil, fmt.Errorf("make patch: %w", err)
			}
			side.into[d.Module] = dir
		}
	}
	old, err := openTree(ctx, opts.From, work, oldLoad)
	if err != nil {
		return nil, fmt.Errorf("make patch: %w", err)
	}
	new, err := openTree(ctx, opts.To, work, newLoad)
	if err != nil {
		return nil, fmt.Errorf("make patch: %w", err)
	}
	a.LoadDur = time.Since(start)
	start = time.Now()
	var dopts diff.Options
	for _, d := range opts.With {
		dopts.With = append(dopts.With, d.Module)
	}
	if opts.Target != nil {
		dopts.HasPoint = HasPointIn(opts.Target)
		// Without the program, exported functions stay conservative.
		if callers, err := ProgramCallers(ctx, opts.Target, new); err == nil {
			dopts.Callers = callers
		}
	}
	a.Report = diff.Diff(old, new, dopts)
	a.Report.From, a.Report.To = opts.From, opts.To
	if a.Report.Admitted {
		// Arguments reach a replacement through rt.NoEscape: it must keep
		// none the original does not keep (escape.go).
		checkEscapes(ctx, old, new, effectiveLoad(opts.From, oldLoad), effectiveLoad(opts.To, newLoad), a.Report)
	}
	a.DiffDur = time.Since(start)
	if !a.Report.Admitted {
		return a, ErrNotAdmitted
	}
	start = time.Now()
	p, err := plugingen.Generate(old.Pkgs, new.Pkgs, a.Report)
	if err != nil {
		return a, err
	}
	a.Source = p.Source
	a.GenDur = time.Since(start)
	if opts.Builder == nil {
		return a, nil
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return a, fmt.Errorf("make patch: %w", err)
	}
	sum := sha256.Sum256(p.Source)
	id := "p" + hex.EncodeToString(sum[:4]) + hex.EncodeToString(rnd[:])
	start = time.Now()
	pkg := "graftpatch_" + id
	buildID, err := opts.Builder.BuildPlugin(ctx, pkg, p.Source, opts.Out)
	if err != nil {
		return a, fmt.Errorf("make patch: build plugin: %w", err)
	}
	a.BuildDur = time.Since(start)
	if opts.Target != nil && opts.Target.Build.ID != "" && buildID != opts.Target.Build.ID {
		return a, fmt.Errorf("make patch: %w: plugin built against %s, target is %s", ErrWrongBuild, short12(buildID), short12(opts.Target.Build.ID))
	}
	fileSum, err := fileSHA256(opts.Out)
	if err != nil {
		return a, fmt.Errorf("make patch: %w", err)
	}
	a.Manifest = &api.PatchManifest{
		Version: api.Version, ID: id, Plugin: pkg, BuildID: buildID, SHA256: fileSum,
		Slots: p.Slots, PerCall: opts.PerCall, Created: time.Now().UTC().Truncate(time.Second),
		From: opts.From, To: opts.To, Changes: a.Report.Changes,
	}
	if opts.Key == nil {
		return a, nil
	}
	a.Signed, err = api.SignPatch(opts.Key, *a.Manifest)
	if err != nil {
		return a, fmt.Errorf("make patch: %w", err)
	}
	b, err := json.MarshalIndent(a.Signed, "", "  ")
	if err != nil {
		return a, fmt.Errorf("make patch: %w", err)
	}
	if err := os.WriteFile(ManifestPath(opts.Out), append(b, '\n'), 0o644); err != nil {
		return a, fmt.Errorf("make patch: %w", err)
	}
	return a, nil
}

func short12(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// openTree loads a directory, or fetches MODULE@VERSION first.
func openTree(ctx context.Context, spec, work string, lo LoadOptions) (*Tree, error) {
	if st, err := os.Stat(spec); err == nil && st.IsDir() {
		return LoadTree(ctx, spec, lo)
	}
	if !strings.Contains(spec, "@") {
		return nil, fmt.Errorf("open %s: neither a directory nor MODULE@VERSION", spec)
	}
	dir, err := FetchModule(ctx, spec, work)
	if err != nil {
		return nil, err
	}
	lo.ModMod = true
	return LoadTree(ctx, dir, lo)
}

// targetEnv is the GOOS and GOARCH the target was built for, as go
// command environment (nil when the manifest does not say).
func targetEnv(m *api.Manifest) []string {
	if m == nil || m.Build.GOOS == "" || m.Build.GOARCH == "" {
		return nil
	}
	return []string{"GOOS=" + m.Build.GOOS, "GOARCH=" + m.Build.GOARCH}
}

// effectiveLoad is how openTree loaded spec: fetched modules with -mod=mod.
func effectiveLoad(spec string, lo LoadOptions) LoadOptions {
	if st, err := os.Stat(spec); err != nil || !st.IsDir() {
		lo.ModMod = true
	}
	return lo
}

// openDir returns the directory of a dependency's version: spec is a
// directory, a version of module, or MODULE@VERSION.
func openDir(ctx context.Context, module, spec, work string) (string, error) {
	if st, err := os.Stat(spec); err == nil && st.IsDir() {
		return filepath.Abs(spec)
	}
	if !strings.Contains(spec, "@") {
		spec = module + "@" + spec
	}
	return FetchModule(ctx, spec, work)
}

func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// Reasons Verify refuses an artifact; test with errors.Is (the signature
// reasons are api.ErrPatch*).
var (
	ErrWrongBuild     = errors.New("patch made for another build")
	ErrPluginModified = errors.New("plugin file does not match its signed manifest")
)

// Verify checks the artifact at so against the pinned key pub and, when
// buildID is not empty, against the build it is about to be applied to. It
// reads the plugin file but never loads it.
func Verify(so string, pub ed25519.PublicKey, buildID string) (*api.PatchManifest, *api.SignedPatch, error) {
	b, err := os.ReadFile(ManifestPath(so))
	if err != nil {
		return nil, nil, fmt.Errorf("verify patch: %w", err)
	}
	var s api.SignedPatch
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, fmt.Errorf("verify patch: %w: %v", api.ErrPatchMalformed, err)
	}
	m, err := s.Verify(pub)
	if err != nil {
		return nil, nil, err
	}
	sum, err := fileSHA256(so)
	if err != nil {
		return nil, nil, fmt.Errorf("verify patch: %w", err)
	}
	if sum != m.SHA256 {
		return nil, nil, fmt.Errorf("verify patch %s: %w", m.ID, ErrPluginModified)
	}
	if buildID != "" && m.BuildID != buildID {
		return nil, nil, fmt.Errorf("verify patch %s: %w: made for %s, running %s", m.ID, ErrWrongBuild, short12(m.BuildID), short12(buildID))
	}
	return m, &s, nil
}
