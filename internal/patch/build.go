package patch

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/instrument"
)

// InstrumentBuilder builds plugins with internal/instrument, reproducing the
// target's build (same rewritten overlay, modfile, flags and toolchain), so
// the plugin shares the running program's packages.
type InstrumentBuilder struct {
	Target *api.Manifest // the target's graft build manifest
	// Patterns are the packages the target was built from; default the
	// manifest's instrumented packages.
	Patterns []string
	// Instrument are the --instrument patterns of the target build (its
	// dependencies that were instrumented); default Patterns.
	Instrument []string
	CacheDir   string
	Logger     *slog.Logger
}

var _ PluginBuilder = (*InstrumentBuilder)(nil)

// prepare reproduces the target build: patchable first (what a target must
// be to load plugins), then plain.
func (ib *InstrumentBuilder) prepare(ctx context.Context) (*instrument.Build, error) {
	m := ib.Target
	if len(m.Build.Patterns) > 0 && ib.Patterns == nil && ib.Instrument == nil {
		// The manifest records how the target was prepared: reproduce that.
		b, err := instrument.PrepareManifest(ctx, m, ib.CacheDir, ib.Logger)
		if err != nil {
			return nil, err
		}
		if err := platformMatch(m, &b.Manifest); err != nil {
			return nil, err
		}
		if b.Manifest.Build.ID != m.Build.ID {
			return nil, fmt.Errorf("%w: rebuilt %s, target %s (sources, go.mod, flags or toolchain changed since the target was built)", ErrWrongBuild, short12(b.Manifest.Build.ID), short12(m.Build.ID))
		}
		return b, nil
	}
	pats := ib.Patterns
	if len(pats) == 0 {
		pats = m.Build.Packages
	}
	inst := ib.Instrument
	if inst == nil {
		inst = pats
	}
	var last *instrument.Build
	for _, patchable := range []bool{true, false} {
		b, err := instrument.Prepare(ctx, instrument.Options{
			Dir: m.Build.Dir, Patterns: pats, Instrument: inst, Flags: m.Build.Flags,
			Patchable: patchable, CacheDir: ib.CacheDir, Logger: ib.Logger,
		})
		if err != nil {
			return nil, err
		}
		if err := platformMatch(m, &b.Manifest); err != nil {
			return nil, err
		}
		if b.Manifest.Build.ID == m.Build.ID {
			return b, nil
		}
		last = b
	}
	return last, fmt.Errorf("%w: rebuilt %s, target %s (sources, go.mod, flags or toolchain changed since the target was built)", ErrWrongBuild, short12(last.Manifest.Build.ID), short12(m.Build.ID))
}

// platformMatch says precisely why a rebuild cannot match a target built
// for another platform: the go command builds for the environment's
// GOOS/GOARCH, and the plugin must be built for the target's.
func platformMatch(target, rebuilt *api.Manifest) error {
	t, r := target.Build, rebuilt.Build
	if t.GOOS == "" || t.GOARCH == "" || (t.GOOS == r.GOOS && t.GOARCH == r.GOARCH) {
		return nil
	}
	return fmt.Errorf("%w: the target was built for %s/%s and this environment builds for %s/%s: run with GOOS=%s GOARCH=%s (and CGO_ENABLED=1 with a C compiler for it)",
		ErrWrongBuild, t.GOOS, t.GOARCH, r.GOOS, r.GOARCH, t.GOOS, t.GOARCH)
}

// BuildPlugin writes src as package dir pkg at the target module's root
// (through the overlay: the tree is not touched) and builds it with
// -buildmode=plugin.
func (ib *InstrumentBuilder) BuildPlugin(ctx context.Context, pkg string, src []byte, out string) (string, error) {
	if ib.Target == nil {
		return "", errors.New("build plugin: no target manifest")
	}
	b, err := ib.prepare(ctx)
	if err != nil {
		return "", fmt.Errorf("build plugin: %w", err)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", fmt.Errorf("build plugin: %w", err)
	}
	root := ib.Target.Build.Dir
	dir, target := filepath.Join(root, pkg), "./"+pkg
	if parent, err := internalParent(src); err != nil {
		return "", fmt.Errorf("build plugin: %w", err)
	} else if parent != "" {
		// Go lets only packages under parent import parent/internal/...:
		// the plugin goes inside the module that owns them.
		pdir, err := ib.packageDir(ctx, b, parent)
		if err != nil {
			return "", fmt.Errorf("build plugin: %w", err)
		}
		dir, target = filepath.Join(pdir, pkg), parent+"/"+pkg
	}
	cmd, err := b.Command(ctx, "build", map[string]string{filepath.Join(dir, "patch.go"): string(src)},
		"-buildmode=plugin", "-o", abs, target)
	if err != nil {
		return "", fmt.Errorf("build plugin: %w", err)
	}
	cmd.Dir = root
	cmd.Env = append(cmd.Env, "CGO_ENABLED=1")
	if outb, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build plugin: %w: %s", err, strings.TrimSpace(string(outb)))
	}
	return b.Manifest.Build.ID, nil
}

// internalParent returns the import path under which a plugin with source
// src must live to import the internal packages it imports ("" when it
// imports none): the deepest parent of every "internal" element, which
// must nest.
func internalParent(src []byte) (string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "patch.go", src, parser.ImportsOnly)
	if err != nil {
		return "", err
	}
	parent := ""
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		i := strings.LastIndex("/"+path+"/", "/internal/")
		if i < 0 {
			continue
		}
		p := path[:max(i-1, 0)]
		switch {
		case parent == "" || strings.HasPrefix(p+"/", parent+"/"):
			parent = p
		case strings.HasPrefix(parent+"/", p+"/"):
		default:
			return "", fmt.Errorf("plugin imports internal packages of %s and %s: no package may import both", parent, p)
		}
	}
	return parent, nil
}

// packageDir finds the directory of import path ip's module in the target
// build (a dependency graft copied to instrument it, say) and returns the
// directory ip has, or would have, in it.
func (ib *InstrumentBuilder) packageDir(ctx context.Context, b *instrument.Build, ip string) (string, error) {
	cmd, err := b.Command(ctx, "list", nil, "-m", "-f", "{{.Path}} {{.Dir}}", "all")
	if err != nil {
		return "", err
	}
	cmd.Dir = ib.Target.Build.Dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("list modules: %w", err)
	}
	best, dir := "", ""
	for _, line := range strings.Split(string(out), "\n") {
		mod, d, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || d == "" || len(mod) <= len(best) || (ip != mod && !strings.HasPrefix(ip, mod+"/")) {
			continue
		}
		best, dir = mod, d
	}
	if best == "" {
		return "", fmt.Errorf("no module of the target build provides %s", ip)
	}
	return filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(ip, best), "/"))), nil
}
