package patch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/graftdev/graft/internal/instrument"
	"github.com/graftdev/graft/internal/patch/diff"
	"golang.org/x/mod/modfile"
	"golang.org/x/tools/go/packages"
)

// Tree is a loaded source tree: the packages Diff compares.
type Tree = diff.Tree

// LoadOptions says how to load a tree; the zero value loads ./... with the
// tree's own go.mod as is.
type LoadOptions struct {
	Patterns []string // default ./...
	// ModMod lets go resolve missing requirements (-mod=mod). Only for
	// private copies (fetched modules): it may rewrite go.mod.
	ModMod bool
	Env    []string // extra environment
	// Replace loads these modules (path → directory) instead of the
	// versions go.mod requires, and adds their packages to the tree: a fix
	// that spans a module and its dependency is diffed as one tree. The
	// tree's go.mod is not touched (a temporary -modfile carries the
	// replace directives).
	Replace map[string]string
}

const loadMode = packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
	packages.NeedTypes | packages.NeedTypesInfo | packages.NeedTypesSizes | packages.NeedImports | packages.NeedModule

// LoadTree loads and type-checks the packages of the tree at dir.
func LoadTree(ctx context.Context, dir string, opts LoadOptions) (*Tree, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("load tree %s: %w", dir, err)
	}
	patterns := opts.Patterns
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	env := append(os.Environ(), "GOWORK=off")
	if opts.ModMod {
		env = append(env, "GOFLAGS=-mod=mod")
	}
	env = append(env, opts.Env...)
	cfg := &packages.Config{Context: ctx, Mode: loadMode, Dir: abs, Env: env}
	if len(opts.Replace) > 0 {
		tmp, err := os.MkdirTemp("", "graft-tree-")
		if err != nil {
			return nil, fmt.Errorf("load tree %s: %w", dir, err)
		}
		defer os.RemoveAll(tmp)
		modf, err := replacedModfile(abs, tmp, opts.Replace)
		if err != nil {
			return nil, fmt.Errorf("load tree %s: %w", dir, err)
		}
		cfg.BuildFlags = []string{"-modfile=" + modf}
		if !opts.ModMod {
			cfg.Env = append(cfg.Env, "GOFLAGS=-mod=mod")
		}
		patterns = append([]string(nil), patterns...)
		for _, mod := range slices.Sorted(maps.Keys(opts.Replace)) {
			patterns = append(patterns, mod+"/...")
		}
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil, fmt.Errorf("load tree %s: %w", dir, err)
	}
	t := &Tree{Dir: abs, Pkgs: map[string]*packages.Package{}}
	var errs []string
	for _, p := range pkgs {
		for _, e := range p.Errors {
			errs = append(errs, e.Error())
		}
		if p.Module != nil && p.Module.Main && t.Module == "" {
			t.Module = p.Module.Path
		}
		if p.Types == nil || len(p.Syntax) == 0 {
			continue
		}
		t.Pkgs[p.PkgPath] = p
	}
	if len(errs) > 0 {
		if len(errs) > 5 {
			errs = append(errs[:5], fmt.Sprintf("and %d more", len(errs)-5))
		}
		return nil, fmt.Errorf("load tree %s: %s", dir, strings.Join(errs, "; "))
	}
	if len(t.Pkgs) == 0 {
		return nil, fmt.Errorf("load tree %s: no Go packages", dir)
	}
	// Packages of replaced dependencies are the tree's too; everything
	// else was only loaded for its types.
	for path, p := range t.Pkgs {
		if p.Module != nil && p.Module.Path != t.Module && opts.Replace[p.Module.Path] == "" {
			delete(t.Pkgs, path)
		}
	}
	t.Requires = map[string]string{}
	if b, err := os.ReadFile(filepath.Join(abs, "go.mod")); err == nil {
		if f, err := modfile.ParseLax("go.mod", b, nil); err == nil {
			for _, r := range f.Require {
				t.Requires[r.Mod.Path] = r.Mod.Version
			}
		}
	}
	return t, nil
}

// ErrNotModule is returned by FetchModule for an argument that is not MOD@VERSION.
var ErrNotModule = errors.New("not MODULE@VERSION")

// FetchModule downloads mod@version through the module proxy (go mod
// download) and copies it into a writable directory under into, adding a
// go.mod for modules that predate modules. It returns the copy's path.
func FetchModule(ctx context.Context, spec, into string) (string, error) {
	path, version, ok := strings.Cut(spec, "@")
	if !ok || path == "" || version == "" {
		return "", fmt.Errorf("fetch %q: %w", spec, ErrNotModule)
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", spec)
	cmd.Dir = into
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	runErr := cmd.Run()
	var info struct {
		Dir, Version, Error string
	}
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		return "", fmt.Errorf("fetch %s: %v: %s", spec, runErr, strings.TrimSpace(stderr.String()))
	}
	if info.Error != "" {
		return "", fmt.Errorf("fetch %s: %s", spec, info.Error)
	}
	dst := filepath.Join(into, strings.ReplaceAll(path, "/", "_")+"@"+info.Version)
	if err := instrument.CopyTree(info.Dir, dst, 0o644); err != nil {
		return "", fmt.Errorf("fetch %s: %w", spec, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "go.mod")); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(filepath.Join(dst, "go.mod"), []byte("module "+path+"\n\ngo 1.16\n"), 0o644); err != nil {
			return "", fmt.Errorf("fetch %s: %w", spec, err)
		}
	}
	return dst, nil
}

// replacedModfile writes dir/go.mod plus replace directives, and its go.sum,
// into tmp and returns the go.mod's path (for -modfile).
func replacedModfile(dir, tmp string, replace map[string]string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	f, err := modfile.Parse("go.mod", b, nil)
	if err != nil {
		return "", err
	}
	for _, mod := range slices.Sorted(maps.Keys(replace)) {
		if err := f.AddReplace(mod, "", replace[mod], ""); err != nil {
			return "", err
		}
	}
	out, err := f.Format()
	if err != nil {
		return "", err
	}
	modf := filepath.Join(tmp, "go.mod")
	if err := os.WriteFile(modf, out, 0o644); err != nil {
		return "", err
	}
	if sum, err := os.ReadFile(filepath.Join(dir, "go.sum")); err == nil {
		if err := os.WriteFile(filepath.Join(tmp, "go.sum"), sum, 0o644); err != nil {
			return "", err
		}
	}
	return modf, nil
}
