package diff

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/printer"
	"go/scanner"
	"go/token"
	"go/types"
	"maps"
	"slices"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/patch/plugingen"
)

// Tree is one version of a source tree, loaded and type-checked.
type Tree struct {
	Dir    string
	Module string                       // module path, "" outside modules
	Pkgs   map[string]*packages.Package // the tree's own packages by import path
	// Requires are the go.mod requirements, module path → version.
	Requires map[string]string
}

// Options tunes Diff. The zero value assumes every non-generic function has
// a patch point.
type Options struct {
	// HasPoint reports whether function id has a patch point in the target
	// build and, when not, why (from the graft build manifest). Nil means
	// every function has one.
	HasPoint func(id string) (ok bool, reason string)
	// Callers, when set, searches the whole target program outside the
	// diffed tree for references to function id (ok false: it could not
	// tell). An exported function without a patch point, or with a new
	// signature, is then admitted when nothing outside the tree calls it.
	Callers func(id string) (callers []string, ok bool)
	// With are module paths whose packages were diffed along with the tree
	// (MakeOptions.With): a change of their requirement is carried.
	With []string
}

// pkgDecls is what Diff compares of one package.
type pkgDecls struct {
	pkg    *packages.Package
	funcs  map[string]*funcDecl
	inits  string // every init body, in file order
	vars   map[string]*varDecl
	consts map[string]string // name → type and value
	types  map[string]*types.TypeName
}

type funcDecl struct {
	id      string
	decl    *ast.FuncDecl
	obj     *types.Func
	text    string // printed declaration without comments
	sig     string
	sigKey  string // sig without parameter and result names: what callers see
	oldSig  string // set when the signature changed
	generic bool
}

type varDecl struct {
	typ  string
	init string   // printed initializer of its spec ("" when none)
	uses []string // ids of package-level constants the initializer uses
}

func collect(p *packages.Package) *pkgDecls {
	d := &pkgDecls{pkg: p, funcs: map[string]*funcDecl{}, vars: map[string]*varDecl{},
		consts: map[string]string{}, types: map[string]*types.TypeName{}}
	qual := qualifier
	var inits strings.Builder
	files := append([]*ast.File(nil), p.Syntax...)
	sort.Slice(files, func(i, j int) bool {
		return p.Fset.Position(files[i].Pos()).Filename < p.Fset.Position(files[j].Pos()).Filename
	})
	for _, f := range files {
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				text := printNode(p.Fset, stripDoc(decl))
				if decl.Recv == nil && decl.Name.Name == "init" {
					inits.WriteString(text)
					inits.WriteByte('\n')
					continue
				}
				obj, _ := p.TypesInfo.Defs[decl.Name].(*types.Func)
				if obj == nil || decl.Name.Name == "_" {
					continue
				}
				fd := &funcDecl{id: funcID(obj), decl: decl, obj: obj, text: text,
					sig: types.TypeString(obj.Type(), qual), sigKey: unnamedSig(obj.Type().(*types.Signature)), generic: isGeneric(decl)}
				d.funcs[fd.id] = fd
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					switch spec := spec.(type) {
					case *ast.ValueSpec:
						d.valueSpec(decl.Tok, spec, qual)
					case *ast.TypeSpec:
						if tn, ok := p.TypesInfo.Defs[spec.Name].(*types.TypeName); ok && spec.Name.Name != "_" {
							d.types[spec.Name.Name] = tn
						}
					}
				}
			}
		}
	}
	d.inits = inits.String()
	return d
}

func (d *pkgDecls) valueSpec(tok token.Token, spec *ast.ValueSpec, qual types.Qualifier) {
	info := d.pkg.TypesInfo
	var init string
	var uses []string
	if len(spec.Values) > 0 {
		var b strings.Builder
		for i, v := range spec.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(printNode(d.pkg.Fset, v))
			ast.Inspect(v, func(n ast.Node) bool {
				if id, ok := n.(*ast.Ident); ok {
					if c, ok := info.Uses[id].(*types.Const); ok && c.Pkg() != nil && c.Parent() == c.Pkg().Scope() {
						uses = append(uses, c.Pkg().Path()+"."+c.Name())
					}
				}
				return true
			})
		}
		init = b.String()
	}
	for _, name := range spec.Names {
		if name.Name == "_" {
			continue
		}
		switch obj := info.Defs[name].(type) {
		case *types.Var:
			d.vars[name.Name] = &varDecl{typ: types.TypeString(obj.Type(), qual), init: init, uses: uses}
		case *types.Const:
			d.consts[name.Name] = types.TypeString(obj.Type(), qual) + " = " + obj.Val().ExactString()
		}
	}
	_ = tok
}

// unnamedSig spells a signature without its parameter and result names:
// naming results (for a deferred recover, say) changes no caller.
func unnamedSig(sig *types.Signature) string {
	strip := func(t *types.Tuple) *types.Tuple {
		vs := make([]*types.Var, t.Len())
		for i := range vs {
			vs[i] = types.NewParam(token.NoPos, nil, "", t.At(i).Type())
		}
		return types.NewTuple(vs...)
	}
	plain := types.NewSignatureType(nil, nil, nil, strip(sig.Params()), strip(sig.Results()), sig.Variadic())
	return types.TypeString(plain, qualifier)
}

// qualifier writes full import paths, so strings compare across two loads.
func qualifier(p *types.Package) string { return p.Path() }

func stripDoc(d *ast.FuncDecl) *ast.FuncDecl {
	c := *d
	c.Doc = nil
	return &c
}

// printNode renders n as its token stream without comments, so layout and
// comments never count as a change. Optional semicolons (before a closing
// bracket) are dropped and automatic ones count as explicit ones.
func printNode(fset *token.FileSet, n ast.Node) string {
	start, end := fset.PositionFor(n.Pos(), false), fset.PositionFor(n.End(), false)
	src, err := readSource(start.Filename)
	if err != nil || end.Offset > len(src) || start.Offset > end.Offset {
		var b bytes.Buffer
		if err := printer.Fprint(&b, fset, n); err != nil {
			return fmt.Sprintf("<unprintable: %v>", err)
		}
		return b.String()
	}
	var sc scanner.Scanner
	fs := token.NewFileSet()
	f := fs.AddFile("", -1, end.Offset-start.Offset)
	sc.Init(f, src[start.Offset:end.Offset], nil, 0)
	var b strings.Builder
	pendingSemi := false
	for {
		_, tok, lit := sc.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.SEMICOLON {
			pendingSemi = true
			continue
		}
		if pendingSemi && tok != token.RBRACE && tok != token.RPAREN {
			b.WriteString("; ")
		}
		pendingSemi = false
		if lit != "" {
			b.WriteString(lit)
		} else {
			b.WriteString(tok.String())
		}
		b.WriteByte(' ')
	}
	return b.String()
}

// Diff compares two versions of a tree and decides, change by change,
// whether a patch can carry it into a running program.
func Diff(old, new *Tree, opts Options) *api.PatchReport {
	r := &api.PatchReport{Version: api.Version, From: old.Dir, To: new.Dir}
	dd := &differ{opts: opts, report: r, old: map[string]*pkgDecls{}, new: map[string]*pkgDecls{},
		oldReq: old.Requires, newReq: new.Requires}
	for path, p := range old.Pkgs {
		dd.old[path] = collect(p)
	}
	for path, p := range new.Pkgs {
		dd.new[path] = collect(p)
	}
	dd.ifaces = interfaces(old, new)
	dd.run()
	sort.Slice(r.Changes, func(i, j int) bool {
		a, b := r.Changes[i], r.Changes[j]
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Kind < b.Kind
	})
	sort.Strings(r.Slots)
	r.Admitted = len(r.Slots) > 0
	for _, c := range r.Changes {
		if !c.Admitted {
			r.Admitted = false
		}
	}
	return r
}

type differ struct {
	opts     Options
	report   *api.PatchReport
	old, new map[string]*pkgDecls
	ifaces   map[string]methodSet // interface (printed) → its method set
	dirty    map[string]bool      // ids of changed constants
	oldReq   map[string]string
	newReq   map[string]string
	renewals []renewal // read-only variables with a changed initializer
}

func (dd *differ) add(id, kind, change string, ok bool, format string, args ...any) {
	dd.report.Changes = append(dd.report.Changes, api.PatchChange{
		ID: id, Kind: kind, Change: change, Admitted: ok, Reason: fmt.Sprintf(format, args...)})
}

func (dd *differ) run() {
	dd.dirty = map[string]bool{}
	paths := slices.Sorted(maps.Keys(dd.new))
	for _, path := range slices.Sorted(maps.Keys(dd.old)) {
		if _, ok := dd.new[path]; !ok {
			dd.add(path, "package", api.Removed, true, "package no longer in the tree; its code stays in the running program")
		}
	}
	// Constants first: a changed constant changes every function that uses it.
	for _, path := range paths {
		n, o := dd.new[path], dd.old[path]
		if o == nil {
			dd.add(path, "package", api.Added, false, "new package: a package cannot be added to a running program by a patch; its functions would have no patch points and its init would run in the plugin")
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(n.consts)) {
			id := path + "." + name
			switch ov, ok := o.consts[name]; {
			case !ok:
				dd.add(id, api.PatchConst, api.Added, true, "new constant: compiled into the patch")
			case ov != n.consts[name]:
				dd.dirty[id] = true
				dd.add(id, api.PatchConst, api.Changed, true, "constant %s → %s: every function that uses it is recompiled into the patch", strings.TrimPrefix(ov, ""), n.consts[name])
			}
		}
		for _, name := range slices.Sorted(maps.Keys(o.consts)) {
			if _, ok := n.consts[name]; !ok {
				dd.add(path+"."+name, api.PatchConst, api.Removed, true, "removed constant: unused by the new code")
			}
		}
	}
	dd.diffRequires()
	var changed []*funcDecl  // admitted so far, before patch points
	var resigned []*funcDecl // unexported, signature changed: travel as new functions
	for _, path := range paths {
		n, o := dd.new[path], dd.old[path]
		if o == nil {
			continue
		}
		dd.diffTypes(path, o, n)
		dd.diffVars(path, o, n)
		if o.inits != n.inits {
			dd.add(path+".init", api.PatchInit, api.Changed, false, "changed init: init already ran in the running program and cannot run again")
		}
		for _, id := range slices.Sorted(maps.Keys(n.funcs)) {
			nf := n.funcs[id]
			of, ok := o.funcs[id]
			if !ok {
				dd.addedFunc(nf)
				continue
			}
			why := ""
			if of.text != nf.text {
				why = "body changed"
			} else if c := dd.usesDirty(n.pkg, nf.decl); c != "" {
				why = "uses changed constant " + c
			} else {
				continue
			}
			switch {
			case of.generic || nf.generic:
				dd.add(id, api.PatchFunc, api.Changed, false, "generic function (%s): instantiations are compiled into their callers' shapes and have no patch point", why)
			case of.sigKey != nf.sigKey && nf.obj.Exported():
				dd.add(id, api.PatchFunc, api.Changed, false, "signature change of an exported function (callers outside the tree keep the old one): %s → %s", of.sig, nf.sig)
			case of.sigKey != nf.sigKey:
				nf.oldSig = of.sig
				resigned = append(resigned, nf)
			default:
				changed = append(changed, nf)
			}
		}
		for _, id := range slices.Sorted(maps.Keys(o.funcs)) {
			if _, ok := n.funcs[id]; !ok {
				dd.add(id, api.PatchFunc, api.Removed, true, "removed: the old body stays in the program, no longer called by patched code")
			}
		}
	}
	dd.placePoints(changed, resigned)
}

// diffRequires refuses a change of the tree's module requirements: the
// plugin must link exactly the running program's version of every other
// module, so a fix that lives in a dependency is made from that
// dependency's two versions instead.
func (dd *differ) diffRequires() {
	used := map[string]bool{}
	var walk func(p *types.Package)
	walk = func(p *types.Package) {
		if used[p.Path()] {
			return
		}
		used[p.Path()] = true
		for _, imp := range p.Imports() {
			walk(imp)
		}
	}
	for _, d := range dd.new {
		walk(d.pkg.Types)
	}
	uses := func(mod string) bool {
		for p := range used {
			if p == mod || strings.HasPrefix(p, mod+"/") {
				return true
			}
		}
		return false
	}
	for _, path := range slices.Sorted(maps.Keys(dd.newReq)) {
		ov, nv := dd.oldReq[path], dd.newReq[path]
		switch {
		case ov != nv && slices.Contains(dd.opts.With, path):
			dd.add(path, "module", api.Changed, true, "requirement %s %s → %s: diffed along with the tree, its changes are in this patch", path, ov, nv)
		case ov != nv && !uses(path):
			dd.add(path, "module", api.Changed, true, "requirement %s %q → %q: no diffed package imports it", path, ov, nv)
		case ov == "":
			dd.add(path, "module", api.Added, false, "new requirement %s %s: a patch links only what the running program already has", path, nv)
		case ov != nv:
			dd.add(path, "module", api.Changed, false, "requirement %s %s → %s: the plugin must link the running program's version; diff it along (--with %s@%s:%s) or patch it itself (--from %s@%s --to %s@%s)", path, ov, nv, path, ov, nv, path, ov, path, nv)
		}
	}
}

func (dd *differ) addedFunc(f *funcDecl) {
	switch {
	case f.generic:
		dd.add(f.id, api.PatchFunc, api.Added, true, "new generic helper: instantiated inside the patch")
	case f.obj.Type().(*types.Signature).Recv() != nil:
		// Method-set effects were judged in diffTypes; a new method that
		// changes no interface satisfaction is called only statically.
		dd.add(f.id, api.PatchFunc, api.Added, true, "new method: travels in the patch and is called statically by patched code (method sets of the running program are unchanged)")
	default:
		dd.add(f.id, api.PatchFunc, api.Added, true, "new helper: travels in the patch")
	}
}

// usesDirty returns the first changed constant that decl uses, or "".
func (dd *differ) usesDirty(p *packages.Package, decl *ast.FuncDecl) string {
	if len(dd.dirty) == 0 {
		return ""
	}
	var found string
	ast.Inspect(decl, func(n ast.Node) bool {
		id, ok := n.(*ast.Ident)
		if !ok || found != "" {
			return found == ""
		}
		if c, ok := p.TypesInfo.Uses[id].(*types.Const); ok && c.Pkg() != nil {
			if k := c.Pkg().Path() + "." + c.Name(); dd.dirty[k] {
				found = k
			}
		}
		return true
	})
	return found
}

func (dd *differ) diffVars(path string, o, n *pkgDecls) {
	for _, name := range slices.Sorted(maps.Keys(n.vars)) {
		id := path + "." + name
		nv := n.vars[name]
		ov, ok := o.vars[name]
		switch {
		case !ok:
			dd.add(id, api.PatchVar, api.Added, true, "new variable: travels in the patch, initialized when the patch loads")
		case ov.typ != nv.typ:
			dd.add(id, api.PatchVar, api.Changed, false, "type of variable changed: %s → %s", ov.typ, nv.typ)
		case ov.init != nv.init:
			dd.renew(path, name, fmt.Sprintf("changed initializer (%s → %s)", short(ov.init), short(nv.init)))
		default:
			for _, c := range nv.uses {
				if dd.dirty[c] {
					dd.renew(path, name, "initializer uses changed constant "+c)
					break
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(o.vars)) {
		if _, ok := n.vars[name]; !ok {
			dd.add(path+"."+name, api.PatchVar, api.Removed, true, "removed variable: stays in the program, unused by patched code")
		}
	}
}

// renew queues a changed initializer for placePoints, or refuses it.
func (dd *differ) renew(path, name, change string) {
	id := path + "." + name
	readers, why := dd.renewable(path, name)
	if why != "" {
		dd.add(id, api.PatchVar, api.Changed, false, "%s: the running program initialized it already, and it cannot travel in the patch as a new variable: %s", change, why)
		return
	}
	dd.renewals = append(dd.renewals, renewal{id: id, change: change, readers: readers})
}

func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		return s[:57] + "..."
	}
	if s == "" {
		return "zero value"
	}
	return s
}

// Shared with the plugin generator, which names functions and reads
// sources the same way.
var (
	funcID     = plugingen.FuncID
	isGeneric  = plugingen.IsGenericDecl
	readSource = plugingen.ReadSource
)
