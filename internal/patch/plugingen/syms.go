// The generator's symbol resolution: how plugin code names a package-level
// object of the tree (a plugin copy, an exported name, the build's exported
// alias, or a variable resolved from rt's registry in GraftInit), and the
// copies of new constants, types and variables the patch carries.

package plugingen

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/tools/go/packages"
)

func (g *gen) queueFunc(id string) {
	if !g.emitted[id] {
		g.queue = append(g.queue, id)
	}
}

// ref spells a use of obj in plugin code; ok is false when the use needs no
// rewrite (locals, other modules' packages, universe).
func (g *gen) ref(obj types.Object, where string) (string, bool) {
	if obj == nil || !g.isTree(obj.Pkg()) || obj.Parent() != obj.Pkg().Scope() {
		return "", false
	}
	path, name := obj.Pkg().Path(), obj.Name()
	k := g.pkgIndex[path]
	old := g.inOld(path, name)
	switch obj := obj.(type) {
	case *types.Func:
		id := FuncID(obj)
		if g.inPatch[id] {
			g.queueFunc(id)
			return g.pluginName(id), true
		}
		if old == nil {
			g.fail("%s: calls %s, which is neither in the running program nor in the patch", where, id)
			return "", false
		}
		if obj.Exported() {
			return g.imp(path) + "." + name, true
		}
		if g.exports(obj.Pkg()) && obj.Type().(*types.Signature).TypeParams() == nil {
			return g.imp(path) + ".GraftF_" + name, true
		}
		return g.sym("_gf", k, obj, "Func["+g.typeExpr(obj.Type(), where)+"]"), true
	case *types.Var:
		if old == nil || g.renewed[path+"."+name] {
			g.queueVar(obj, k, where)
			return fmt.Sprintf("p%d_%s", k, name), true
		}
		if obj.Exported() {
			return g.imp(path) + "." + name, true
		}
		if g.exports(obj.Pkg()) {
			return "(*" + g.imp(path) + ".GraftV_" + name + ")", true
		}
		return "(*" + g.sym("_gv", k, obj, "Var["+g.typeExpr(obj.Type(), where)+"]") + ")", true
	case *types.Const:
		if obj.Exported() && old != nil {
			return g.imp(path) + "." + name, true
		}
		g.queueConst(obj, k, where)
		return fmt.Sprintf("p%d_%s", k, name), true
	case *types.TypeName:
		if old != nil {
			if obj.Exported() {
				return g.imp(path) + "." + name, true
			}
			if g.exports(obj.Pkg()) && !isGenericType(obj) {
				return g.imp(path) + ".GraftT_" + name, true
			}
			g.fail("%s: type %s.%s cannot be named outside its package (package main has no exports)", where, path, name)
			return "", false
		}
		g.queueType(obj, k, where)
		return fmt.Sprintf("p%d_%s", k, name), true
	}
	return "", false
}

// sym declares a plugin variable resolved from rt's registry in GraftInit.
func (g *gen) sym(prefix string, k int, obj types.Object, getter string) string {
	id := obj.Pkg().Path() + "." + obj.Name()
	if v, ok := g.syms[id]; ok {
		return v
	}
	v := fmt.Sprintf("%s_p%d_%s", prefix, k, obj.Name())
	g.syms[id] = v
	g.rtName()
	typ := strings.TrimSuffix(strings.SplitN(getter, "[", 2)[1], "]")
	if prefix == "_gv" {
		typ = "*" + typ
	}
	g.symDecls = append(g.symDecls, v+" "+typ)
	g.initLines = append(g.initLines, fmt.Sprintf("if %s, err = _graft_rt.%s(%q); err != nil {\n\t\treturn err\n\t}", v, getter, id))
	return v
}

func (g *gen) queueConst(c *types.Const, k int, where string) {
	if g.queuedConst[c] {
		return
	}
	g.queuedConst[c] = true
	val := c.Val()
	var lit string
	switch val.Kind() {
	case constant.Float:
		f, _ := constant.Float64Val(val)
		lit = strconv.FormatFloat(f, 'g', -1, 64)
	default:
		lit = val.ExactString()
	}
	typ := ""
	if b, ok := c.Type().(*types.Basic); !ok || b.Info()&types.IsUntyped == 0 {
		typ = " " + g.typeExpr(c.Type(), where)
	}
	g.out = append(g.out, fmt.Sprintf("const p%d_%s%s = %s", k, c.Name(), typ, lit))
}

func (g *gen) queueType(t *types.TypeName, k int, where string) {
	if g.queuedType[t] {
		return
	}
	g.queuedType[t] = true
	// Copy the declaration, rewritten, and bring its methods along.
	d := g.decls[t.Pkg().Path()]
	for _, f := range d.pkg.Syntax {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if d.pkg.TypesInfo.Defs[ts.Name] != t {
					continue
				}
				src, err := ReadSource(d.pkg.Fset.PositionFor(ts.Pos(), false).Filename)
				if err != nil {
					g.fail("%s: %v", where, err)
					return
				}
				edits := g.exprEdits(d.pkg, ts.Type, where)
				g.out = append(g.out, fmt.Sprintf("type p%d_%s %s", k, t.Name(), render(src, 0, ts.Type, d.pkg.Fset, edits)))
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(d.funcs)) {
		if rn := recvNamed(d.funcs[id].obj); rn != nil && rn.Obj() == t {
			g.queueFunc(id)
		}
	}
}

func (g *gen) queueVar(v *types.Var, k int, where string) {
	if g.queuedVar[v] {
		return
	}
	g.queuedVar[v] = true
	d := g.decls[v.Pkg().Path()]
	g.symDecls = append(g.symDecls, fmt.Sprintf("p%d_%s %s", k, v.Name(), g.typeExpr(v.Type(), where)))
	vs, i := VarSpec(d.pkg, v)
	if vs == nil || len(vs.Values) == 0 {
		return
	}
	if len(vs.Values) != len(vs.Names) {
		g.fail("%s: new variable %s is initialized from a multi-value expression", where, v.Name())
		return
	}
	src, err := ReadSource(d.pkg.Fset.PositionFor(vs.Pos(), false).Filename)
	if err != nil {
		g.fail("%s: %v", where, err)
		return
	}
	edits := g.exprEdits(d.pkg, vs.Values[i], where)
	// Initialized in GraftInit, where a panic becomes an error.
	g.initLines = append(g.initLines, fmt.Sprintf("p%d_%s = %s", k, v.Name(), render(src, 0, vs.Values[i], d.pkg.Fset, edits)))
}

// exprEdits computes edits for an expression outside a function (a type or
// a variable's initializer).
func (g *gen) exprEdits(p *packages.Package, n ast.Node, where string) []edit {
	fset := p.Fset
	off := func(pos token.Pos) int { return fset.PositionFor(pos, false).Offset }
	var edits []edit
	ast.Inspect(n, func(x ast.Node) bool {
		id, ok := x.(*ast.Ident)
		if !ok {
			return true
		}
		obj := p.TypesInfo.Uses[id]
		if pn, ok := obj.(*types.PkgName); ok && !g.isTree(pn.Imported()) {
			if local := g.imp(pn.Imported().Path()); local != id.Name {
				edits = append(edits, edit{off(id.Pos()), off(id.End()), local})
			}
			return true
		}
		if text, ok := g.ref(obj, where); ok {
			edits = append(edits, edit{off(id.Pos()), off(id.End()), text})
		}
		return true
	})
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	return edits
}

// rtName imports rt under the name sym's init lines use.
func (g *gen) rtName() string {
	if _, ok := g.imports[RTImport]; !ok {
		g.imports[RTImport], g.names["_graft_rt"] = "_graft_rt", RTImport
	}
	return g.imports[RTImport]
}
