package instrument

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"golang.org/x/tools/go/packages"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/rewrite"
)

var (
	selfOnce sync.Once
	self     string
)

// selfHash hashes the running executable, so a rebuilt graft never reuses
// rewrites cached by another build of the rewriter, even at the same
// rewrite.Version.
func selfHash() string {
	selfOnce.Do(func() {
		self = "unknown"
		exe, err := os.Executable()
		if err != nil {
			return
		}
		f, err := os.Open(exe)
		if err != nil {
			return
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err == nil {
			self = hex.EncodeToString(h.Sum(nil))[:16]
		}
	})
	return self
}

// pkgResult is the cached rewrite of one package.
type pkgResult struct {
	Files   map[string]string // original file (or new file in the package dir) → name in cache/files
	Points  []api.Point
	Skipped []api.Skipped
	Sites   []api.Site
}

// keyer computes package keys: a hash of the rewriter, the toolchain, the
// selection flags, the package's own files and its imports' keys, so a key
// changes exactly when the rewrite of the package could.
type keyer struct {
	p      *prep
	pkgs   map[string]*listPkg
	base   string
	memo   map[string]string
	active map[string]bool
}

func newKeyer(p *prep, pkgs map[string]*listPkg, toolchain string, sel []string) *keyer {
	cfg, _ := json.Marshal(p.opts.Rewrite)
	return &keyer{p: p, pkgs: pkgs, memo: map[string]string{}, active: map[string]bool{},
		base: fmt.Sprintf("%s|%s|%s|%s|%q", rewrite.Version, selfHash(), toolchain, cfg, sel)}
}

func (k *keyer) key(path string) (string, error) {
	if v, ok := k.memo[path]; ok {
		return v, nil
	}
	if k.active[path] {
		return "cycle", nil
	}
	k.active[path] = true
	defer delete(k.active, path)
	lp := k.pkgs[path]
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", k.base, path)
	switch {
	case lp == nil:
		fmt.Fprintf(h, "unknown\n")
	case lp.Standard:
		fmt.Fprintf(h, "std\n")
	case lp.Module != nil && !lp.Module.Main && lp.Module.Version != "" && lp.Module.Replace == nil:
		fmt.Fprintf(h, "mod %s@%s\n", lp.Module.Path, lp.Module.Version)
	default:
		fmt.Fprintf(h, "dir %s\n", lp.Dir)
		files := append(append([]string(nil), lp.GoFiles...), lp.CgoFiles...)
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(lp.Dir, f))
			if err != nil {
				return "", fmt.Errorf("hash %s: %w", path, err)
			}
			s := sha256.Sum256(b)
			fmt.Fprintf(h, "%s %x\n", f, s)
		}
	}
	if lp != nil && !lp.Standard {
		imps := append([]string(nil), lp.Imports...)
		sort.Strings(imps)
		for _, imp := range imps {
			ik, err := k.key(imp)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "import %s %s\n", imp, ik)
		}
	}
	v := hex.EncodeToString(h.Sum(nil))
	k.memo[path] = v
	return v, nil
}

func (p *prep) resultPath(key string) string {
	return filepath.Join(p.cache, "pkg", key[:2], key+".json")
}

func (p *prep) loadResult(key string) *pkgResult {
	b, err := os.ReadFile(p.resultPath(key))
	if err != nil {
		return nil
	}
	var r pkgResult
	if json.Unmarshal(b, &r) != nil {
		return nil
	}
	for _, f := range r.Files {
		if _, err := os.Stat(filepath.Join(p.cache, "files", f)); err != nil {
			return nil // the cache was pruned under us
		}
	}
	return &r
}

func (p *prep) storeResult(key string, r *pkgResult) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	path := p.resultPath(key)
	if os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return
	}
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	if os.WriteFile(tmp, b, 0o644) == nil {
		os.Rename(tmp, path)
	}
}

// rewrite type-checks the packages (dependencies from export data) and
// rewrites them.
func (p *prep) rewrite(ctx context.Context, root string, sel []string, lps []*listPkg) (map[string]*pkgResult, error) {
	cfg := &packages.Config{
		Context:    ctx,
		Mode:       packages.NeedName | packages.NeedFiles | packages.NeedCompiledGoFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo | packages.NeedImports,
		Dir:        p.dir,
		Env:        p.env,
		BuildFlags: sel,
	}
	var paths []string
	want := map[string]*listPkg{}
	for _, lp := range lps {
		paths = append(paths, lp.ImportPath)
		want[lp.ImportPath] = lp
	}
	var facts map[string]*pkgFacts
	if p.opts.Rewrite.Budget >= 0 {
		var err error
		if facts, err = p.compilerFacts(ctx, sel, paths); err != nil {
			// Fall back on the rewriter's leaf heuristic; the build
			// itself will report what is wrong, if anything.
			p.log.Warn("using the inlinable-leaf heuristic", "error", err)
		}
	}
	loaded, err := packages.Load(cfg, paths...)
	if err != nil {
		return nil, fmt.Errorf("load packages: %w", err)
	}
	out := map[string]*pkgResult{}
	for _, pkg := range loaded {
		lp := want[pkg.PkgPath]
		if lp == nil || out[pkg.PkgPath] != nil {
			continue
		}
		if len(pkg.Errors) > 0 || pkg.TypesInfo == nil {
			// Leave it plain: go build reports the errors itself.
			p.log.Warn("not instrumenting a package with errors", "package", pkg.PkgPath, "error", pkg.Errors)
			out[pkg.PkgPath] = &pkgResult{Files: map[string]string{}}
			continue
		}
		goFiles := map[string]bool{}
		for _, f := range lp.GoFiles {
			goFiles[filepath.Join(lp.Dir, f)] = true
		}
		in := rewrite.Input{PkgPath: pkg.PkgPath, Fset: pkg.Fset, Info: pkg.TypesInfo, Src: map[string][]byte{}}
		var files []*ast.File
		for i, f := range pkg.Syntax {
			name := pkg.CompiledGoFiles[i]
			if !goFiles[name] {
				continue
			}
			src, err := os.ReadFile(name)
			if err != nil {
				return nil, fmt.Errorf("rewrite %s: %w", pkg.PkgPath, err)
			}
			in.Src[pkg.Fset.File(f.Pos()).Name()] = src
			files = append(files, f)
		}
		in.Files = files
		rcfg := p.opts.Rewrite
		rcfg.AtomicLoad = rcfg.AtomicLoad || raceFlag(p.opts.Flags)
		if facts != nil {
			rcfg.Inlinable = map[string]bool{} // asked: nothing inlinable
			if f := facts[pkg.PkgPath]; f != nil {
				rcfg.Inlinable, rcfg.Leaking = f.Inlinable, f.Leaking
			}
		}
		res, err := rewrite.Package(in, rcfg)
		if err != nil {
			return nil, err
		}
		r := &pkgResult{Files: map[string]string{}, Points: res.Points, Skipped: res.Skipped, Sites: res.Sites}
		for name, content := range res.Files {
			f, err := putFile(p.cache, content, ".go")
			if err != nil {
				return nil, fmt.Errorf("rewrite %s: %w", pkg.PkgPath, err)
			}
			r.Files[name] = filepath.Base(f)
		}
		if exp := rewrite.Exports(in); exp != nil && len(r.Files) > 0 {
			f, err := putFile(p.cache, exp, ".go")
			if err != nil {
				return nil, fmt.Errorf("rewrite %s: %w", pkg.PkgPath, err)
			}
			r.Files[filepath.Join(lp.Dir, "zz_graft_export.go")] = filepath.Base(f)
		}
		out[pkg.PkgPath] = r
	}
	for _, lp := range lps {
		if out[lp.ImportPath] == nil {
			// Say what it did load: a mismatch here has only been seen
			// under heavy load, and the packages' errors tell why.
			var got []string
			for _, pkg := range loaded {
				got = append(got, fmt.Sprintf("%q (id %q, errors %v)", pkg.PkgPath, pkg.ID, pkg.Errors))
			}
			return nil, fmt.Errorf("rewrite: go/packages did not load %s; it loaded %v", lp.ImportPath, got)
		}
	}
	return out, nil
}
