package patch

import (
	"context"
	"fmt"
	"go/ast"
	"go/types"
	"os"
	"sort"

	"golang.org/x/tools/go/packages"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/patch/plugingen"
)

// ProgramCallers searches the target program for callers outside the
// diffed tree: it loads the packages the target build was made from (the
// manifest's patterns, in its directory) and everything they import that is
// not the standard library, and indexes which of their functions reference
// which function. The result is Options.Callers.
//
// It lets the diff admit a change to an exported function that has no patch
// point (or a new signature) when nothing outside the tree calls it: the
// callers inside the tree are then recompiled like an unexported
// function's.
func ProgramCallers(ctx context.Context, m *api.Manifest, tree *Tree) (func(string) ([]string, bool), error) {
	if m == nil || m.Build.Dir == "" || len(m.Build.Patterns) == 0 {
		return nil, fmt.Errorf("program callers: the manifest names no program")
	}
	// Read-only: the program's go.mod must not change under the user; an
	// untidy one makes the search fail, and the diff stays conservative.
	env := append(append(os.Environ(), "GOWORK=off"), targetEnv(m)...)
	cfg := &packages.Config{Context: ctx, Dir: m.Build.Dir, Env: env,
		Mode: packages.NeedName | packages.NeedImports | packages.NeedDeps | packages.NeedModule}
	roots, err := packages.Load(cfg, m.Build.Patterns...)
	if err != nil {
		return nil, fmt.Errorf("program callers: %w", err)
	}
	var paths []string
	packages.Visit(roots, nil, func(p *packages.Package) {
		if p.Module == nil || tree.Pkgs[p.PkgPath] != nil {
			return // standard library, or the tree itself
		}
		paths = append(paths, p.PkgPath)
	})
	out := map[string][]string{}
	if len(paths) > 0 {
		cfg.Mode = loadMode
		pkgs, err := packages.Load(cfg, paths...)
		if err != nil {
			return nil, fmt.Errorf("program callers: %w", err)
		}
		for _, p := range pkgs {
			if len(p.Errors) > 0 || p.TypesInfo == nil {
				return nil, fmt.Errorf("program callers: %s: %v", p.PkgPath, p.Errors)
			}
			indexCallers(p, out)
		}
	}
	return func(id string) ([]string, bool) { return out[id], true }, nil
}

// indexCallers records, for every function p references, the functions of
// p that reference it (the package path for package-level references).
func indexCallers(p *packages.Package, out map[string][]string) {
	seen := map[[2]string]bool{}
	for _, f := range p.Syntax {
		for _, decl := range f.Decls {
			from := p.PkgPath
			if fd, ok := decl.(*ast.FuncDecl); ok {
				if obj, ok := p.TypesInfo.Defs[fd.Name].(*types.Func); ok {
					from = plugingen.FuncID(obj)
				}
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				id, ok := n.(*ast.Ident)
				if !ok {
					return true
				}
				fn, ok := p.TypesInfo.Uses[id].(*types.Func)
				if !ok {
					return true
				}
				k := [2]string{plugingen.FuncID(fn.Origin()), from}
				if !seen[k] {
					seen[k] = true
					out[k[0]] = append(out[k[0]], from)
					sort.Strings(out[k[0]])
				}
				return true
			})
		}
	}
}
