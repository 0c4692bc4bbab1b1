package rewrite

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"github.com/graftdev/graft/api"
)

const (
	kindMake   = "make"
	kindIndex  = "index"
	kindSlice  = "slice"
	kindDiv    = "div"
	kindAssert = "assert"
	kindDepth  = "depth"
	kindLoop   = "loop"
	kindNil    = "nil"
)

type siteRef struct {
	v    string // generated variable
	kind string
	site api.Site
}

// sites finds fd's check sites, adds their edits and returns them.
func (r *rewriter) sites(fs *fileState, fd *ast.FuncDecl, id, fn string) []siteRef {
	return r.findSites(fs, fd, id, fn, false)
}

// recoverSites registers the recover sites (index, slice, div, assert, nil)
// of a function left without a patch point: they need no code in the
// function, only an instrumented caller with an error result, so inlined
// functions, leaves and generic functions keep them. Its make sites stay
// too, testing their own switch (rt.LenOn); its loop and depth sites are
// lost (they need the point's word).
func (r *rewriter) recoverSites(fs *fileState, fd *ast.FuncDecl) {
	if r.cfg.NoSites || fd.Body == nil {
		return
	}
	id, fn := r.funcID(fd)
	for _, s := range r.findSites(fs, fd, id, fn, true) {
		s.site.Point = ""
		fmt.Fprintf(&fs.tail, "var %s _graft_rt.Site\n", s.v)
		fmt.Fprintf(&fs.inits, "\t_graft_rt.RegisterSite(&%s, nil, _graft_rt.SiteInfo{ID: %q, Kind: %q, Package: %q, Func: %q, File: %q, Line: %d})\n",
			s.v, s.site.ID, s.site.Kind, r.in.PkgPath, fn, fs.name, s.site.Line)
		r.out.Sites = append(r.out.Sites, s.site)
		fs.registered = true
	}
}

func (r *rewriter) findSites(fs *fileState, fd *ast.FuncDecl, id, fn string, recoverOnly bool) []siteRef {
	var out []siteRef
	seen := map[string]int{}
	newSite := func(kind string, n ast.Node, path []int) string {
		h := siteHash(kind, path)
		sid := id + ":" + kind + ":" + h
		if c := seen[sid]; c > 0 {
			sid = fmt.Sprintf("%s.%d", sid, c)
		}
		seen[id+":"+kind+":"+h]++
		r.n++
		v := fmt.Sprintf("_graft_s%d", r.n)
		pos := r.in.Fset.Position(n.Pos())
		out = append(out, siteRef{v: v, kind: kind, site: api.Site{ID: sid, Kind: kind, Point: id,
			Package: r.in.PkgPath, Func: fn, File: fs.name, Line: pos.Line, Col: pos.Column}})
		return v
	}

	if !recoverOnly && r.recursive(fd) {
		newSite(kindDepth, fd, nil)
	}
	if r.dereferences(fd) {
		// One site for the whole function: nil pointer dereferences and
		// nil map writes are attributed by the panicking frame's function.
		newSite(kindNil, fd, nil)
	}
	hasGoto := false
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if b, ok := n.(*ast.BranchStmt); ok && b.Tok == token.GOTO {
			hasGoto = true
		}
		return true
	})

	loops := 0
	var path []int
	var counters []int
	counters = append(counters, 0)
	var stack []ast.Node
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if n == nil {
			path = path[:len(path)-1]
			counters = counters[:len(counters)-1]
			stack = stack[:len(stack)-1]
			return false
		}
		idx := counters[len(counters)-1]
		counters[len(counters)-1]++
		path = append(path, idx)
		counters = append(counters, 0)
		var parent ast.Node
		if len(stack) > 0 {
			parent = stack[len(stack)-1]
		}
		stack = append(stack, n)
		p := append([]int(nil), path...)

		switch x := n.(type) {
		case *ast.CallExpr:
			if !r.isBuiltin(x.Fun, "make") || len(x.Args) < 2 {
				break
			}
			for _, a := range x.Args[1:] {
				if r.constant(a) || !r.integer(a) || multiline(fs, a) {
					continue
				}
				v := newSite(kindMake, a, p)
				// The site tests its own switch (one load next to
				// an allocation), with or without a patch point.
				fs.wrap(a, "_graft_rt.LenOn(&"+v+", int64(", "))")
			}
		// Index, slice, division and assertion sites insert no code: their
		// failure is a runtime panic, which rt.Recover (armed only while a
		// site is on) attributes to the site by the panicking frame's
		// file:line. Dormant, they cost nothing.
		case *ast.IndexExpr:
			if r.constant(x.Index) || !r.integer(x.Index) {
				break
			}
			if _, ok := r.indexable(x.X); !ok {
				break
			}
			newSite(kindIndex, x, p)
		case *ast.SliceExpr:
			if _, ok := r.indexable(x.X); !ok {
				break
			}
			for _, b := range []ast.Expr{x.Low, x.High, x.Max} {
				if b != nil && !r.constant(b) {
					newSite(kindSlice, x, p)
					break
				}
			}
		case *ast.BinaryExpr:
			if (x.Op == token.QUO || x.Op == token.REM) && r.integer(x) && !r.constant(x.Y) {
				newSite(kindDiv, x, p)
			}
		case *ast.AssignStmt:
			if (x.Tok == token.QUO_ASSIGN || x.Tok == token.REM_ASSIGN) && len(x.Rhs) == 1 && r.integer(x.Lhs[0]) && !r.constant(x.Rhs[0]) {
				newSite(kindDiv, x, p)
			}
		case *ast.TypeAssertExpr:
			if x.Type == nil {
				break // type switch
			}
			if tv, ok := r.in.Info.Types[x]; !ok || tv.Type == nil {
				break
			} else if _, tuple := tv.Type.(*types.Tuple); tuple {
				break // comma-ok form cannot fail
			}
			newSite(kindAssert, x, p)
		case *ast.ForStmt:
			// Only loops without a post statement (for {}, for cond {}):
			// counted three-clause loops rarely hang, and the check costs
			// a test per iteration.
			if recoverOnly || hasGoto || x.Body == nil || x.Post != nil {
				break
			}
			v := newSite(kindLoop, x, p)
			loops++
			c := fmt.Sprintf("_graft_c%d", loops)
			var stmt ast.Node = x
			if l, ok := parent.(*ast.LabeledStmt); ok && l.Stmt == x {
				stmt = l
			}
			s, e := fs.off(stmt.Pos()), fs.off(stmt.End())
			fs.add(edit{off: s, end: s, text: c + " := 0; ", class: 2, span: e - s + 1})
			lb := fs.off(x.Body.Lbrace) + 1
			fs.add(edit{off: lb, end: lb, text: " _graft_rt.LoopOn(&" + v + ", &" + c + ");", class: -1})
		}
		return true
	})
	return out
}

// dereferences reports whether fd's body dereferences a pointer (explicitly,
// or by selecting a field through one) or assigns to a map element.
func (r *rewriter) dereferences(fd *ast.FuncDecl) bool {
	found := false
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if found {
			return false
		}
		switch x := n.(type) {
		case *ast.StarExpr:
			if tv, ok := r.in.Info.Types[x]; ok && tv.IsValue() {
				found = true
			}
		case *ast.SelectorExpr:
			if sel, ok := r.in.Info.Selections[x]; ok && sel.Kind() == types.FieldVal && sel.Indirect() {
				found = true
			}
		case *ast.AssignStmt:
			for _, l := range x.Lhs {
				if ix, ok := l.(*ast.IndexExpr); ok {
					if t := r.in.Info.TypeOf(ix.X); t != nil {
						if _, isMap := t.Underlying().(*types.Map); isMap {
							found = true
						}
					}
				}
			}
		}
		return true
	})
	return found
}

// recursive reports whether fd's body calls fd itself (directly, not
// through a closure value or interface).
func (r *rewriter) recursive(fd *ast.FuncDecl) bool {
	self := r.in.Info.Defs[fd.Name]
	if self == nil {
		return false
	}
	found := false
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if found {
			return false
		}
		c, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		switch f := unparen(c.Fun).(type) {
		case *ast.Ident:
			found = r.in.Info.Uses[f] == self
		case *ast.SelectorExpr:
			if sel, ok := r.in.Info.Selections[f]; ok {
				found = sel.Obj() == self
			} else {
				found = r.in.Info.Uses[f.Sel] == self
			}
		}
		return true
	})
	return found
}

func (r *rewriter) isBuiltin(e ast.Expr, name string) bool {
	id, ok := unparen(e).(*ast.Ident)
	if !ok || id.Name != name {
		return false
	}
	_, ok = r.in.Info.Uses[id].(*types.Builtin)
	return ok
}

func (r *rewriter) constant(e ast.Expr) bool {
	tv, ok := r.in.Info.Types[e]
	return !ok || tv.Value != nil
}

// integer reports whether e is a typed integer value (not a type parameter).
func (r *rewriter) integer(e ast.Expr) bool {
	tv, ok := r.in.Info.Types[e]
	if !ok || !tv.IsValue() || tv.Type == nil {
		return false
	}
	if _, ok := tv.Type.(*types.TypeParam); ok {
		return false
	}
	b, ok := tv.Type.Underlying().(*types.Basic)
	return ok && b.Info()&types.IsInteger != 0 && b.Info()&types.IsUntyped == 0
}

// indexable returns the text to take len of when x is a side-effect-free
// slice, string, array or pointer-to-array operand.
func (r *rewriter) indexable(x ast.Expr) (string, bool) {
	tv, ok := r.in.Info.Types[x]
	if !ok || !tv.IsValue() || tv.Type == nil {
		return "", false
	}
	switch t := tv.Type.(type) {
	case *types.TypeParam:
		return "", false
	case *types.Pointer:
		if _, ok := t.Elem().Underlying().(*types.Array); !ok {
			return "", false
		}
		return "", true
	}
	switch u := tv.Type.Underlying().(type) {
	case *types.Slice, *types.Array:
		return "", true
	case *types.Basic:
		if u.Info()&types.IsString != 0 && u.Info()&types.IsUntyped == 0 {
			return "", true
		}
	}
	return "", false
}

func multiline(fs *fileState, n ast.Node) bool {
	return strings.ContainsAny(fs.text(n), "\n")
}
