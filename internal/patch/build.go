package patch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
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
		if b.Manifest.Build.ID == m.Build.ID {
			return b, nil
		}
		last = b
	}
	return last, fmt.Errorf("%w: rebuilt %s, target %s (sources, go.mod, flags or toolchain changed since the target was built)", ErrWrongBuild, short12(last.Manifest.Build.ID), short12(m.Build.ID))
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
	cmd, err := b.Command(ctx, "build", map[string]string{filepath.Join(root, pkg, "patch.go"): string(src)},
		"-buildmode=plugin", "-o", abs, "./"+pkg)
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
