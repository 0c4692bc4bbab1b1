// Package instrument drives `graft build` and `graft test`: it selects the
// packages to instrument, rewrites them (package rewrite) into a
// content-addressed cache, writes a go build overlay and a -modfile copy of
// go.mod that links rt, and builds the manifest. Prepare is also the API
// graft patch uses to build plugins against exactly the same build.
package instrument

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/rewrite"
)

// Options says what to build; the zero value builds the package in the
// current directory.
type Options struct {
	Dir        string   // a directory inside the module; "" = the current directory
	Patterns   []string // the packages go build / go test gets; default ["."]
	Instrument []string // import-path patterns to instrument besides the main module's packages
	Flags      []string // go build flags, passed to every go command (-tags, -race, -gcflags, -trimpath, ...)
	Tests      bool     // also instrument main-module packages only tests import
	Patchable  bool     // link github.com/graftdev/graft/rt/rtplugin into main packages (plugin loading; needs cgo)
	CacheDir   string   // default: os.UserCacheDir()/graft
	Rewrite    rewrite.Config
	Logger     *slog.Logger
	Go         string // the go command; default "go"
	// Env is added to every go command's environment, after this
	// process's: GOOS=, GOARCH=, CGO_ENABLED= for a build for another
	// platform.
	Env []string
}

// Build is a prepared instrumented build.
type Build struct {
	Dir      string // main module root; go commands run here
	Overlay  string // overlay JSON file
	Modfile  string // -modfile, or "" when the main module is graft itself
	Env      []string
	Manifest api.Manifest
	// Rewritten and Cached count the instrumented packages rewritten now
	// and those whose rewrite came from the cache.
	Rewritten, Cached int

	goTool  string
	mod     string // "-mod=..." or ""
	flags   []string
	overlay map[string]string
	cache   string
}

// GoFlags returns the flags every go command on this build needs: overlay,
// modfile and the user's build flags.
func (b *Build) GoFlags() []string {
	f := []string{"-overlay=" + b.Overlay}
	if b.Modfile != "" {
		f = append(f, "-modfile="+b.Modfile)
	}
	if b.mod != "" {
		f = append(f, b.mod)
	}
	return append(f, b.flags...)
}

// Command returns `go VERB <GoFlags> ARGS...` in the module root. extra adds
// overlay entries (absolute path → contents), e.g. a plugin package that
// exists in no tree; they are written content-addressed into the cache.
func (b *Build) Command(ctx context.Context, verb string, extra map[string]string, args ...string) (*exec.Cmd, error) {
	return b.command(ctx, verb, extra, true, args)
}

// CommandOwnFlags is Command without Options.Flags: for callers that pass
// the user's whole go command line themselves (graft build, graft test).
func (b *Build) CommandOwnFlags(ctx context.Context, verb string, args ...string) (*exec.Cmd, error) {
	return b.command(ctx, verb, nil, false, args)
}

func (b *Build) command(ctx context.Context, verb string, extra map[string]string, userFlags bool, args []string) (*exec.Cmd, error) {
	ov := b.Overlay
	if len(extra) > 0 {
		m := make(map[string]string, len(b.overlay)+len(extra))
		for k, v := range b.overlay {
			m[k] = v
		}
		for path, content := range extra {
			if !filepath.IsAbs(path) {
				return nil, fmt.Errorf("command: overlay path %s is not absolute", path)
			}
			f, err := putFile(b.cache, []byte(content), filepath.Ext(path))
			if err != nil {
				return nil, fmt.Errorf("command: %w", err)
			}
			m[path] = f
		}
		var err error
		if ov, err = writeOverlay(b.cache, m); err != nil {
			return nil, fmt.Errorf("command: %w", err)
		}
	}
	full := []string{verb, "-overlay=" + ov}
	if b.Modfile != "" {
		full = append(full, "-modfile="+b.Modfile)
	}
	if b.mod != "" {
		full = append(full, b.mod)
	}
	if userFlags {
		full = append(full, b.flags...)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, b.goTool, full...)
	cmd.Dir = b.Dir
	cmd.Env = b.Env
	return cmd, nil
}

// WriteManifest writes the manifest as indented JSON.
func (b *Build) WriteManifest(path string) error {
	data, err := json.MarshalIndent(&b.Manifest, "", "  ")
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// prep is the state of one Prepare.
type prep struct {
	opts   Options
	dir    string
	env    []string
	goTool string
	cache  string
	log    *slog.Logger
}

// PrepareManifest prepares the build a manifest describes, with the same
// directory, patterns, flags and options; compare the result's
// Manifest.Build.ID with m.Build.ID to know it is the same build. cache ""
// is the default cache.
func PrepareManifest(ctx context.Context, m *api.Manifest, cache string, logger *slog.Logger) (*Build, error) {
	return Prepare(ctx, manifestOptions(m, cache, logger))
}

// manifestOptions are the Options that reproduce m's build, for m's
// platform whatever this process's environment says (a patch for a 32-bit
// target is made on a 64-bit machine). A patchable build linked the plugin
// loader, which needs cgo, which go turns off by default for another
// GOARCH.
func manifestOptions(m *api.Manifest, cache string, logger *slog.Logger) Options {
	var env []string
	if m.Build.GOOS != "" {
		env = append(env, "GOOS="+m.Build.GOOS)
	}
	if m.Build.GOARCH != "" {
		env = append(env, "GOARCH="+m.Build.GOARCH)
	}
	if m.Build.Patchable {
		env = append(env, "CGO_ENABLED=1")
	}
	return Options{
		Dir: m.Build.Dir, Patterns: m.Build.Patterns, Instrument: m.Build.Instrument, Flags: m.Build.Flags,
		Tests: m.Build.Tests, Patchable: m.Build.Patchable, CacheDir: cache, Logger: logger, Env: env,
		Rewrite: rewrite.Config{Budget: m.Build.Budget, NoSites: m.Build.NoSites},
	}
}

// ErrNoModule is returned outside a Go module.
var ErrNoModule = errors.New("not inside a Go module (no go.mod)")

// Prepare rewrites what opts selects and returns the build.
func Prepare(ctx context.Context, opts Options) (*Build, error) {
	p := &prep{opts: opts, goTool: opts.Go, log: opts.Logger}
	if p.goTool == "" {
		p.goTool = "go"
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p.log = p.log.With("component", "instrument")
	var err error
	if p.dir, err = filepath.Abs(orDot(opts.Dir)); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	p.env = append(append(os.Environ(), "GOWORK=off"), opts.Env...)
	p.cache = opts.CacheDir
	if p.cache == "" {
		uc, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("prepare: cache dir: %w", err)
		}
		p.cache = filepath.Join(uc, "graft")
	}
	if err := os.MkdirAll(filepath.Join(p.cache, "files"), 0o755); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return p.run(ctx)
}

func orDot(s string) string {
	if s == "" {
		return "."
	}
	return s
}

func (p *prep) run(ctx context.Context) (*Build, error) {
	out, err := p.goCmd(ctx, "env", "-json", "GOMOD", "GOVERSION", "GOOS", "GOARCH")
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	var ge struct{ GOMOD, GOVERSION, GOOS, GOARCH string }
	if err := json.Unmarshal(out, &ge); err != nil {
		return nil, fmt.Errorf("prepare: go env: %w", err)
	}
	if ge.GOMOD == "" || ge.GOMOD == os.DevNull {
		return nil, fmt.Errorf("prepare %s: %w", p.dir, ErrNoModule)
	}
	root := filepath.Dir(ge.GOMOD)
	gomod, err := os.ReadFile(ge.GOMOD)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	modPath := modulePath(gomod)

	b := &Build{Dir: p.dir, Env: p.env, goTool: p.goTool, cache: p.cache, flags: append([]string(nil), p.opts.Flags...)}
	rth := rtHash()
	if modPath != rtModule {
		if requires(gomod, rtModule) {
			p.log.Warn("module already requires graft: linking rt at its required version", "module", modPath)
		} else {
			rtDir, err := extractRT(p.cache, rth)
			if err != nil {
				return nil, fmt.Errorf("prepare: %w", err)
			}
			if b.Modfile, err = p.modfile(root, gomod, rtDir, nil); err != nil {
				return nil, fmt.Errorf("prepare: %w", err)
			}
			// go build refuses overlays of files in the module cache, so
			// modules with --instrument'ed packages are copied into graft's
			// cache and replaced by the copy in the modfile.
			if len(p.opts.Instrument) > 0 {
				sel0 := append([]string{"-modfile=" + b.Modfile}, selectFlags(p.opts.Flags)...)
				xs, err := p.list(ctx, sel0, p.opts.Instrument, false, false)
				if err != nil {
					return nil, fmt.Errorf("prepare: --instrument: %w", err)
				}
				deps := map[string]string{}
				for _, x := range xs {
					if x.Module == nil || x.Module.Main || x.Module.Replace != nil || x.Module.Version == "" || x.Module.Dir == "" {
						continue
					}
					key := x.Module.Path + " " + x.Module.Version
					if _, done := deps[key]; done {
						continue
					}
					dir, err := copyModule(p.cache, x.Module.Path, x.Module.Version, x.Module.Dir)
					if err != nil {
						return nil, fmt.Errorf("prepare: --instrument: %w", err)
					}
					deps[key] = dir
				}
				if len(deps) > 0 {
					if b.Modfile, err = p.modfile(root, gomod, rtDir, deps); err != nil {
						return nil, fmt.Errorf("prepare: %w", err)
					}
				}
			}
		}
		if fi, err := os.Stat(filepath.Join(root, "vendor")); err == nil && fi.IsDir() && !hasModFlag(p.opts.Flags) {
			b.mod = "-mod=mod"
		}
	}

	patterns := p.opts.Patterns
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	// Every go command, including graft's own listing and type-checking,
	// goes through the modfile copy: -mod=mod then updates the copy's
	// go.sum, never the user's.
	sel := selectFlags(p.opts.Flags)
	if b.Modfile != "" {
		sel = append([]string{"-modfile=" + b.Modfile}, sel...)
	}
	if b.mod != "" {
		sel = append(sel, b.mod)
	}
	pkgs, err := p.list(ctx, sel, patterns, true, p.opts.Tests)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	extra := map[string]bool{}
	if len(p.opts.Instrument) > 0 {
		xs, err := p.list(ctx, sel, p.opts.Instrument, false, false)
		if err != nil {
			return nil, fmt.Errorf("prepare: --instrument: %w", err)
		}
		for _, x := range xs {
			extra[x.ImportPath] = true
		}
	}
	byPath := map[string]*listPkg{}
	var targets []*listPkg
	for _, lp := range pkgs {
		if lp.ForTest != "" || strings.HasSuffix(lp.ImportPath, ".test") || lp.Standard {
			continue
		}
		if _, dup := byPath[lp.ImportPath]; dup {
			continue
		}
		byPath[lp.ImportPath] = lp
		if lp.ImportPath == rtModule+"/rt" || strings.HasPrefix(lp.ImportPath, rtModule+"/rt/") || lp.Error != nil || len(lp.GoFiles) == 0 {
			continue
		}
		if (lp.Module != nil && lp.Module.Main) || extra[lp.ImportPath] {
			targets = append(targets, lp)
		}
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].ImportPath < targets[j].ImportPath })

	keys := newKeyer(p, byPath, ge.GOVERSION+"/"+ge.GOOS+"/"+ge.GOARCH, append(selectFlags(p.opts.Flags), b.mod))
	results := map[string]*pkgResult{}
	var misses []*listPkg
	for _, lp := range targets {
		k, err := keys.key(lp.ImportPath)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		if r := p.loadResult(k); r != nil {
			results[lp.ImportPath] = r
			b.Cached++
			continue
		}
		misses = append(misses, lp)
	}
	if len(misses) > 0 {
		p.log.Debug("rewriting", "packages", len(misses), "cached", len(targets)-len(misses))
		fresh, err := p.rewrite(ctx, root, sel, misses)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		b.Rewritten = len(fresh)
		for path, r := range fresh {
			results[path] = r
			k, _ := keys.key(path)
			p.storeResult(k, r)
		}
	}

	b.overlay = map[string]string{}
	m := &b.Manifest
	m.Version = api.Version
	m.Points, m.Skipped, m.Sites = []api.Point{}, []api.Skipped{}, []api.Site{}
	for _, lp := range targets {
		r := results[lp.ImportPath]
		if r == nil {
			continue
		}
		for orig, f := range r.Files {
			b.overlay[orig] = filepath.Join(p.cache, "files", f)
		}
		m.Points = append(m.Points, r.Points...)
		m.Skipped = append(m.Skipped, r.Skipped...)
		m.Sites = append(m.Sites, r.Sites...)
		m.Build.Packages = append(m.Build.Packages, lp.ImportPath)
	}
	var mains []string
	for _, lp := range pkgs {
		if lp.Name == "main" && lp.ForTest == "" && lp.Module != nil && lp.Module.Main && !strings.HasSuffix(lp.ImportPath, ".test") && lp.Error == nil {
			mains = append(mains, lp.Dir)
		}
	}
	sort.Strings(mains)
	if p.opts.Patchable {
		for _, lp := range pkgs {
			if lp.Name == "main" && lp.ForTest == "" && lp.Module != nil && lp.Module.Main && !strings.HasSuffix(lp.ImportPath, ".test") {
				src := "package main\n\nimport _ \"" + rtModule + "/rt/rtplugin\"\n"
				f, err := putFile(p.cache, []byte(src), ".go")
				if err != nil {
					return nil, fmt.Errorf("prepare: %w", err)
				}
				b.overlay[filepath.Join(lp.Dir, "zz_graft_plugin.go")] = f
			}
		}
	}
	if b.Overlay, err = writeOverlay(p.cache, b.overlay); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}

	// The build id covers the rewritten files (their names are content
	// hashes), every main-module package's sources and its dependencies'
	// versions (the package keys), go.mod/go.sum, toolchain, rt and flags.
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%q\n%s\n", rewrite.Version, rth, ge.GOVERSION+"/"+ge.GOOS+"/"+ge.GOARCH, p.opts.Flags, b.mod)
	// Overlay entries by content name, not path: the cache's location is
	// not part of what was built.
	origs := make([]string, 0, len(b.overlay))
	for o := range b.overlay {
		origs = append(origs, o)
	}
	sort.Strings(origs)
	for _, o := range origs {
		fmt.Fprintf(h, "overlay %s %s\n", o, filepath.Base(b.overlay[o]))
	}
	// The user's go.mod and go.sum, not the copies: go may add sums to the
	// copy, which must not change the id of the same build.
	h.Write(gomod)
	usum, _ := os.ReadFile(filepath.Join(root, "go.sum"))
	h.Write(usum)
	var roots []string
	for path, lp := range byPath {
		if lp.Module != nil && lp.Module.Main {
			roots = append(roots, path)
		}
	}
	sort.Strings(roots)
	for _, path := range roots {
		k, err := keys.key(path)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		fmt.Fprintf(h, "%s %s\n", path, k)
	}
	m.Build = api.ManifestBuild{
		ID: hex.EncodeToString(h.Sum(nil)), Module: modPath, Dir: p.dir,
		Go: ge.GOVERSION, GOOS: ge.GOOS, GOARCH: ge.GOARCH, Graft: rewrite.Version, RT: rth,
		Flags: append([]string{}, p.opts.Flags...), Packages: m.Build.Packages,
		Modfile:  b.Modfile,
		Patterns: patterns, Instrument: p.opts.Instrument, Tests: p.opts.Tests, Patchable: p.opts.Patchable,
		Budget: p.opts.Rewrite.Budget, NoSites: p.opts.Rewrite.NoSites,
	}
	if m.Build.Packages == nil {
		m.Build.Packages = []string{}
	}
	// Main packages learn their build id (rt's admin list reports it, so
	// graft patch can check a patch against the running program). The file
	// is added after the id is computed: the id is over everything else.
	if len(mains) > 0 {
		for _, dir := range mains {
			src := fmt.Sprintf("// Code generated by graft build. DO NOT EDIT.\n\npackage main\n\nimport _graft_rt %q\n\nfunc init() { _graft_rt.SetBuildID(%q) }\n", rtModule+"/rt", m.Build.ID)
			f, err := putFile(p.cache, []byte(src), ".go")
			if err != nil {
				return nil, fmt.Errorf("prepare: %w", err)
			}
			b.overlay[filepath.Join(dir, "zz_graft_buildid.go")] = f
		}
		if b.Overlay, err = writeOverlay(p.cache, b.overlay); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	m.Build.Overlay = b.Overlay
	return b, nil
}

// modfile writes a copy of go.mod requiring rt (replaced by the extracted
// source) and a copy of go.sum beside it, content-addressed.
func (p *prep) modfile(root string, gomod []byte, rtDir string, deps map[string]string) (string, error) {
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil && !os.IsNotExist(err) {
		return "", err
	}
	mod := string(gomod)
	if !strings.HasSuffix(mod, "\n") {
		mod += "\n"
	}
	mod += fmt.Sprintf("\n// added by graft build\nrequire %s v0.0.0-00010101000000-000000000000\n\nreplace %s => %s\n", rtModule, rtModule, rtDir)
	keys := make([]string, 0, len(deps))
	for k := range deps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		path, version, _ := strings.Cut(k, " ")
		mod += fmt.Sprintf("replace %s %s => %s\n", path, version, deps[k])
	}
	sum := sha256.Sum256([]byte(mod + "\x00" + string(gosum)))
	dir := filepath.Join(p.cache, "mod", hex.EncodeToString(sum[:12]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	mf := filepath.Join(dir, "go.mod")
	// Rewritten each time: go may add to go.sum copies; content is ours.
	if err := os.WriteFile(mf, []byte(mod), 0o644); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "go.sum")); os.IsNotExist(err) {
		if err := os.WriteFile(filepath.Join(dir, "go.sum"), gosum, 0o644); err != nil {
			return "", err
		}
	}
	return mf, nil
}

// copyModule copies a module out of the module cache (where go build
// refuses overlays) into cache/dep, once per version, with a go.mod.
func copyModule(cache, path, version, src string) (string, error) {
	dst := filepath.Join(cache, "dep", strings.ReplaceAll(path, "/", "!")+"@"+version)
	if _, err := os.Stat(filepath.Join(dst, "go.mod")); err == nil {
		return dst, nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(cache), "dep-tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	err = CopyTree(src, tmp, 0o444)
	if err != nil {
		return "", fmt.Errorf("copy %s@%s: %w", path, version, err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "go.mod")); os.IsNotExist(err) {
		os.WriteFile(filepath.Join(tmp, "go.mod"), []byte("module "+path+"\n"), 0o444)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, serr := os.Stat(filepath.Join(dst, "go.mod")); serr == nil {
			return dst, nil
		}
		return "", err
	}
	return dst, nil
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// requires reports whether go.mod requires module m (a plain text scan:
// require lines and blocks name modules first).
func requires(gomod []byte, m string) bool {
	in := false
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "require" && len(f) >= 2 && f[1] == "(":
			in = true
		case in && f[0] == ")":
			in = false
		case in && f[0] == m, f[0] == "require" && len(f) >= 2 && f[1] == m:
			return true
		}
	}
	return false
}

func hasModFlag(flags []string) bool {
	for _, f := range flags {
		if strings.HasPrefix(f, "-mod=") || strings.HasPrefix(f, "--mod=") {
			return true
		}
	}
	return false
}

// selectFlags keeps the flags that change which files and packages a build
// sees, for go list and go/packages.
func selectFlags(flags []string) []string {
	var out []string
	for i := 0; i < len(flags); i++ {
		f := strings.TrimPrefix(flags[i], "-")
		f = strings.TrimPrefix(f, "-")
		name, _, hasVal := strings.Cut(f, "=")
		switch name {
		case "tags", "mod":
			out = append(out, flags[i])
			if !hasVal && i+1 < len(flags) {
				i++
				out = append(out, flags[i])
			}
		case "race", "msan", "asan", "cover":
			out = append(out, flags[i])
		}
	}
	return out
}

// raceFlag reports whether flags build with the race detector, which
// needs the prologues' atomic load (rewrite.Config.AtomicLoad). The flag is
// among selectFlags, so it is part of the rewrite's cache key.
func raceFlag(flags []string) bool {
	for _, f := range flags {
		if !strings.HasPrefix(f, "-") {
			continue // a value, such as -tags race
		}
		f = strings.TrimPrefix(strings.TrimPrefix(f, "-"), "-")
		if f == "race" || f == "race=true" || f == "race=1" {
			return true
		}
	}
	return false
}

// putFile stores content under its hash in cache/files and returns the
// path.
func putFile(cache string, content []byte, ext string) (string, error) {
	sum := sha256.Sum256(content)
	name := hex.EncodeToString(sum[:16]) + ext
	path := filepath.Join(cache, "files", name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	tmp := path + ".tmp" + fmt.Sprint(os.Getpid())
	if err := os.WriteFile(tmp, content, 0o444); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

func writeOverlay(cache string, m map[string]string) (string, error) {
	data, err := json.MarshalIndent(struct {
		Replace map[string]string
	}{m}, "", " ") // encoding/json sorts map keys: deterministic
	if err != nil {
		return "", err
	}
	return putFile(cache, data, ".json")
}

// CopyTree copies the regular files and directories under src into dst,
// giving files mode perm (module-cache copies are read-only at 0o444;
// trees meant for editing take 0o644). Other file types are skipped.
func CopyTree(src, dst string, perm os.FileMode) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, perm)
	})
}
