// The generator's rewriting of a function body so it compiles outside its
// package: references to the tree's objects, method calls, composite
// literals that set unexported fields, unexported fields reached through
// their offsets, and the side tables of fields that types gained.

package plugingen

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// edit replaces src[start:end] (offsets in one file).
type edit struct {
	start, end int
	text       string
}

// render returns the source of n with edits applied; an edit inside an
// earlier, wider one is dropped, and so is an insertion (start == end) at
// n's edges, which belongs to the code around n (a statement inserted
// before the one n begins).
func render(src []byte, base int, n ast.Node, fset *token.FileSet, edits []edit) string {
	start := fset.PositionFor(n.Pos(), false).Offset
	end := fset.PositionFor(n.End(), false).Offset
	var b strings.Builder
	cur := start
	for _, e := range edits {
		if e.start < cur || e.end > end || e.start == e.end && (e.start == start || e.start == end) {
			continue
		}
		b.Write(src[cur:e.start])
		b.WriteString(e.text)
		cur = e.end
	}
	b.Write(src[cur:end])
	_ = base
	return b.String()
}

// compound is a rewrite that renders its operands: a method call through
// a plugin function or the build's method expressions, an unexported
// field through its offset or side table, a composite literal that sets
// unexported fields, a reset of a struct with side fields.
type compound struct {
	call  *ast.CallExpr
	field *ast.SelectorExpr
	lit   *ast.CompositeLit // with unexported fields of a tree struct
	whole ast.Node          // the node replaced: lit, or &lit
	ptr   bool              // whole is &lit
	reset *ast.AssignStmt   // x = T{...} where T has side fields
}

// edits computes the rewrites of one declaration: references to the tree's
// package-level objects become plugin names, qualified exported names or
// registry lookups.
func (g *gen) edits(p *packages.Package, decl *ast.FuncDecl, id string) []edit {
	info := p.TypesInfo
	fset := p.Fset
	off := func(pos token.Pos) int { return fset.PositionFor(pos, false).Offset }
	var edits []edit
	add := func(n ast.Node, text string) {
		edits = append(edits, edit{off(n.Pos()), off(n.End()), text})
	}
	where := id
	// Compound rewrites render their operands, so they are done after the
	// identifiers, smallest node first.
	var compounds []compound
	callSel := map[*ast.SelectorExpr]bool{}
	litDone := map[*ast.CompositeLit]bool{}
	var visit func(n ast.Node) bool
	// unexportedLit reports whether lit keys an unexported field of a
	// struct declared in the tree.
	unexportedLit := func(lit *ast.CompositeLit) bool {
		if len(lit.Elts) > 0 {
			if _, keyed := lit.Elts[0].(*ast.KeyValueExpr); !keyed {
				// Positional: every field is set, unexported ones too.
				if n, ok := types.Unalias(info.TypeOf(lit)).(*types.Named); ok && g.isTree(n.Obj().Pkg()) {
					if st, ok := n.Underlying().(*types.Struct); ok {
						for i := range st.NumFields() {
							if !st.Field(i).Exported() {
								return true
							}
						}
					}
				}
				return false
			}
		}
		for _, e := range lit.Elts {
			if kv, ok := e.(*ast.KeyValueExpr); ok {
				if id, ok := kv.Key.(*ast.Ident); ok {
					if v, ok := info.Uses[id].(*types.Var); ok && v.IsField() && g.isTree(v.Pkg()) && !v.Exported() {
						return true
					}
				}
			}
		}
		return false
	}
	litValues := func(lit *ast.CompositeLit) {
		for _, e := range lit.Elts {
			if kv, ok := e.(*ast.KeyValueExpr); ok {
				ast.Inspect(kv.Value, visit)
			} else {
				ast.Inspect(e, visit)
			}
		}
	}
	visit = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if n.Tok == token.ASSIGN && len(n.Lhs) == 1 && len(n.Rhs) == 1 {
				if lit, ok := ast.Unparen(n.Rhs[0]).(*ast.CompositeLit); ok {
					if nt, ok := types.Unalias(info.TypeOf(lit)).(*types.Named); ok && len(g.side[nt.Obj()]) > 0 {
						compounds = append(compounds, compound{reset: n, lit: lit, whole: n})
						litDone[lit] = true
						ast.Inspect(n.Lhs[0], visit)
						litValues(lit)
						return false
					}
				}
			}
		case *ast.UnaryExpr:
			if lit, ok := ast.Unparen(n.X).(*ast.CompositeLit); ok && n.Op == token.AND && unexportedLit(lit) {
				compounds = append(compounds, compound{lit: lit, whole: n, ptr: true})
				litDone[lit] = true
				litValues(lit)
				return false
			}
		case *ast.CompositeLit:
			if !litDone[n] && unexportedLit(n) {
				compounds = append(compounds, compound{lit: n, whole: n})
				litDone[n] = true
				litValues(n)
				return false
			}
		case *ast.CallExpr:
			if sel, ok := ast.Unparen(n.Fun).(*ast.SelectorExpr); ok {
				if s := info.Selections[sel]; s != nil && s.Kind() == types.MethodVal {
					if m, ok := s.Obj().(*types.Func); ok && g.isTree(m.Pkg()) && (g.inPatch[FuncID(m)] || !m.Exported() && g.exports(m.Pkg())) {
						compounds = append(compounds, compound{call: n})
						callSel[sel] = true
					}
				}
			}
		case *ast.SelectorExpr:
			if s := info.Selections[n]; s != nil {
				obj := s.Obj()
				if !g.isTree(obj.Pkg()) || obj.Exported() {
					return true
				}
				switch {
				case s.Kind() == types.FieldVal:
					compounds = append(compounds, compound{field: n})
				case callSel[n]:
				default:
					g.fail("%s: uses unexported method %s as a value", where, types.TypeString(s.Recv(), nil)+"."+obj.Name())
				}
				ast.Inspect(n.X, visit)
				return false
			}
			// A qualified identifier of another tree package: rewrite it whole.
			if x, ok := n.X.(*ast.Ident); ok {
				if pn, ok := info.Uses[x].(*types.PkgName); ok && g.isTree(pn.Imported()) {
					if text, ok := g.ref(info.Uses[n.Sel], where); ok {
						add(n, text)
					}
					return false
				}
			}
		case *ast.Ident:
			obj := info.Uses[n]
			switch obj := obj.(type) {
			case *types.PkgName:
				if !g.isTree(obj.Imported()) {
					if local := g.imp(obj.Imported().Path()); local != n.Name {
						add(n, local)
					}
				}
				return true
			case *types.Var:
				if obj.IsField() && g.isTree(obj.Pkg()) && !obj.Exported() {
					// Keys of composite literals.
					g.fail("%s: sets unexported field %s in a composite literal", where, obj.Name())
					return true
				}
			}
			if text, ok := g.ref(obj, where); ok {
				add(n, text)
			}
		}
		return true
	}
	ast.Inspect(decl, visit)
	sortEdits := func() {
		sort.Slice(edits, func(i, j int) bool {
			ei, ej := edits[i], edits[j]
			if ei.start != ej.start {
				return ei.start < ej.start
			}
			// At one offset an insertion goes first, then the widest
			// replacement (the narrower ones inside it are dropped).
			if (ei.start == ei.end) != (ej.start == ej.end) {
				return ei.start == ei.end
			}
			return ei.end > ej.end
		})
	}
	size := func(c compound) token.Pos {
		switch {
		case c.call != nil:
			return c.call.End() - c.call.Pos()
		case c.lit != nil:
			return c.whole.End() - c.whole.Pos()
		}
		return c.field.End() - c.field.Pos()
	}
	sort.SliceStable(compounds, func(i, j int) bool { return size(compounds[i]) < size(compounds[j]) })
	src, _ := ReadSource(fset.PositionFor(decl.Pos(), false).Filename)
	hoist, hoistEdits := g.sideHoists(decl, compounds, info, off, where)
	edits = append(edits, hoistEdits...)
	edits = append(edits, g.sideCaches(decl, compounds, hoist, info, off, where)...)
	for _, c := range compounds {
		sortEdits()
		if local, ok := hoist[c.field]; ok {
			add(c.field, local+"."+c.field.Sel.Name)
			continue
		}
		if c.field != nil {
			// Side fields go through the per-call cache sideCaches
			// declared in the innermost function body.
			side := func(tn *types.TypeName) string { return sideCacheVar(g.sideOf(tn, where)) + ".of" }
			if innermostBody(decl, c.field.Pos()) == nil {
				side = func(tn *types.TypeName) string { return g.sideOf(tn, where) }
			}
			if text, ok := g.fieldRef(info.Selections[c.field], render(src, 0, c.field.X, fset, edits), where, side); ok {
				add(c.field, text)
			}
			continue
		}
		if c.reset != nil {
			r := func(n ast.Node) string { return render(src, 0, n, fset, edits) }
			if text, ok := g.resetRef(info, c.reset, c.lit, r, where); ok {
				add(c.whole, text)
			}
			continue
		}
		if c.lit != nil {
			if text, ok := g.litRef(info, c.lit, c.ptr, func(n ast.Node) string { return render(src, 0, n, fset, edits) }, where); ok {
				add(c.whole, text)
			}
			continue
		}
		sel := ast.Unparen(c.call.Fun).(*ast.SelectorExpr)
		s := info.Selections[sel]
		m := s.Obj().(*types.Func)
		if len(s.Index()) > 1 {
			g.fail("%s: calls %s through an embedded field", where, m.Name())
			continue
		}
		recv := render(src, 0, sel.X, fset, edits)
		_, ptrRecv := m.Type().(*types.Signature).Recv().Type().(*types.Pointer)
		_, ptrX := s.Recv().Underlying().(*types.Pointer)
		switch {
		case ptrRecv && !ptrX:
			recv = "&" + recv
		case !ptrRecv && ptrX:
			recv = "*" + recv
		}
		var fn string
		if g.inPatch[FuncID(m)] {
			fn = g.pluginName(FuncID(m))
			g.queueFunc(FuncID(m))
		} else {
			fn = g.imp(m.Pkg().Path()) + ".GraftM_" + recvNamed(m).Obj().Name() + "_" + m.Name()
		}
		text := fn + "(" + recv
		if len(c.call.Args) > 0 {
			text += ", "
		}
		edits = append(edits, edit{off(c.call.Pos()), off(c.call.Lparen) + 1, text})
	}
	sortEdits()
	return edits
}

// litRef rewrites a composite literal that sets unexported fields into a
// function literal that builds the value field by field, the unexported
// ones through their offsets.
func (g *gen) litRef(info *types.Info, lit *ast.CompositeLit, ptr bool, r func(ast.Node) string, where string) (string, bool) {
	t := info.TypeOf(lit)
	st, ok := t.Underlying().(*types.Struct)
	if !ok {
		g.fail("%s: composite literal of %s with unexported keys", where, t)
		return "", false
	}
	fs := make([]*types.Var, st.NumFields())
	for i := range fs {
		fs[i] = st.Field(i)
	}
	T := g.typeExpr(t, where)
	var sideFields map[string]bool
	var sideType *types.TypeName
	if n, ok := types.Unalias(t).(*types.Named); ok {
		sideType, sideFields = n.Obj(), g.side[n.Obj()]
	}
	var b strings.Builder
	if ptr {
		fmt.Fprintf(&b, "func() *%s {\n\t_graft_v := new(%s)\n", T, T)
	} else {
		fmt.Fprintf(&b, "func() (_graft_o %s) {\n\t_graft_v := &_graft_o\n\t_ = _graft_v\n", T)
	}
	for i, e := range lit.Elts {
		var name string
		var value ast.Expr
		if kv, ok := e.(*ast.KeyValueExpr); ok {
			name, value = kv.Key.(*ast.Ident).Name, kv.Value
		} else if i < len(fs) {
			name, value = fs[i].Name(), e
		} else {
			g.fail("%s: composite literal of %s has more elements than fields", where, t)
			return "", false
		}
		idx := -1
		for i, f := range fs {
			if f.Name() == name {
				idx = i
			}
		}
		if idx < 0 {
			g.fail("%s: no field %s in %s", where, name, t)
			return "", false
		}
		if fs[idx].Exported() {
			fmt.Fprintf(&b, "\t_graft_v.%s = %s\n", name, r(value))
			continue
		}
		if sideFields[name] {
			if !ptr {
				g.fail("%s: a %s value literal sets field %s, which lives in a side table (only &%s{...} can)", where, t, name, t)
				return "", false
			}
			fmt.Fprintf(&b, "\t%s(_graft_v).%s = %s\n", g.sideOf(sideType, where), name, r(value))
			continue
		}
		ofs, oidx := g.oldFields(t, st, name)
		if oidx < 0 {
			g.fail("%s: field %s is not in the running program's %s", where, name, t)
			return "", false
		}
		g.imp("unsafe")
		// uintptr arithmetic in one expression (unsafe.Pointer rule 3), not
		// unsafe.Add: the plugin may live in a module whose go line predates
		// go1.17 (see patch.internalParent).
		fmt.Fprintf(&b, "\t*(*%s)(unsafe.Pointer(uintptr(unsafe.Pointer(_graft_v)) + %d)) = %s\n", g.typeExpr(fs[idx].Type(), where), g.sizes.Offsetsof(ofs)[oidx], r(value))
	}
	if ptr {
		b.WriteString("\treturn _graft_v\n}()")
	} else {
		b.WriteString("\treturn\n}()")
	}
	return b.String(), true
}

// resetRef rewrites x = T{...} for a type with side fields: the object is
// reset field by field in the running program's layout and its side
// fields are reset with it.
func (g *gen) resetRef(info *types.Info, as *ast.AssignStmt, lit *ast.CompositeLit, r func(ast.Node) string, where string) (string, bool) {
	nt := types.Unalias(info.TypeOf(lit)).(*types.Named)
	side := g.side[nt.Obj()]
	var keep, sideKV []ast.Expr
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			g.fail("%s: positional composite literal of %s", where, nt)
			return "", false
		}
		if side[kv.Key.(*ast.Ident).Name] {
			sideKV = append(sideKV, kv)
		} else {
			keep = append(keep, kv)
		}
	}
	// litRef needs the literal's recorded type: trim its elements in place.
	orig := lit.Elts
	lit.Elts = keep
	value, ok := g.litRef(info, lit, false, r, where)
	lit.Elts = orig
	if !ok {
		return "", false
	}
	acc := g.sideOf(nt.Obj(), where)
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\t_graft_p := &(%s)\n\t*_graft_p = %s\n\t*%s(_graft_p) = %s{}\n", r(as.Lhs[0]), value, acc, strings.TrimSuffix(acc, "_of"))
	for _, e := range sideKV {
		kv := e.(*ast.KeyValueExpr)
		fmt.Fprintf(&b, "\t%s(_graft_p).%s = %s\n", acc, kv.Key.(*ast.Ident).Name, r(kv.Value))
	}
	b.WriteString("}")
	return b.String(), true
}

// layout returns the sizes the old tree was type-checked with: the gc
// compiler's for the target's GOARCH (go/packages asks the go command, so
// a 386 target loaded under GOARCH=386 gets 4-byte ints and pointers
// whatever graft itself runs on). The plugin is built by the same
// toolchain for the same target, so offsets agree. Trees loaded without
// sizes fall back to graft's own GOARCH.
func layout(old map[string]*packages.Package) types.Sizes {
	for _, path := range slices.Sorted(maps.Keys(old)) {
		if s := old[path].TypesSizes; s != nil {
			return s
		}
	}
	return types.SizesFor("gc", runtime.GOARCH)
}

// fieldRef reaches an unexported field through its offset in the struct:
// the build gives plugins no accessor for fields, and the plugin links the
// running program's exact type, so the layout is the same.
// A field that lives in a side table is reached through side(its type):
// a func(*T) *fields, the table's accessor or a per-call cache's of
// (sidecache.go).
func (g *gen) fieldRef(s *types.Selection, x, where string, side func(*types.TypeName) string) (string, bool) {
	t := s.Recv()
	ptr := false
	if p, ok := t.Underlying().(*types.Pointer); ok {
		t, ptr = p.Elem(), true
	}
	addrOf := func(x string) string {
		if ptr {
			return x
		}
		return "&(" + x + ")"
	}
	if tn := g.sideField(s); tn != nil {
		return fmt.Sprintf("%s(%s).%s", side(tn), addrOf(x), s.Obj().Name()), true
	}
	var off int64
	for i, idx := range s.Index() {
		st, ok := t.Underlying().(*types.Struct)
		if !ok {
			g.fail("%s: field %s of a non-struct", where, s.Obj().Name())
			return "", false
		}
		name := st.Field(idx).Name()
		fs, oidx := g.oldFields(t, st, name)
		if oidx < 0 {
			g.fail("%s: field %s is not in the running program's %s (and not in a side table)", where, name, t)
			return "", false
		}
		off += g.sizes.Offsetsof(fs)[oidx]
		t = st.Field(idx).Type()
		if i < len(s.Index())-1 {
			if _, isPtr := t.Underlying().(*types.Pointer); isPtr {
				g.fail("%s: field %s is reached through an embedded pointer", where, s.Obj().Name())
				return "", false
			}
		}
	}
	g.imp("unsafe")
	return fmt.Sprintf("(*(*%s)(unsafe.Pointer(uintptr(unsafe.Pointer(%s)) + %d)))", g.typeExpr(t, where), addrOf(x), off), true
}

// sideField returns the type whose side table holds the field s selects,
// or nil when s is not such a field.
func (g *gen) sideField(s *types.Selection) *types.TypeName {
	t := s.Recv()
	if p, ok := t.Underlying().(*types.Pointer); ok {
		t = p.Elem()
	}
	if n, ok := types.Unalias(t).(*types.Named); ok && len(s.Index()) == 1 && g.side[n.Obj()][s.Obj().Name()] {
		return n.Obj()
	}
	return nil
}

// oldFields returns the fields of the running program's version of struct
// t (new-tree type, underlying st) and the index of field name in them:
// offsets must come from the layout the program has.
func (g *gen) oldFields(t types.Type, st *types.Struct, name string) ([]*types.Var, int) {
	if n, ok := types.Unalias(t).(*types.Named); ok && g.isTree(n.Obj().Pkg()) {
		if ot, ok := g.inOld(n.Obj().Pkg().Path(), n.Obj().Name()).(*types.TypeName); ok {
			if os, ok := ot.Type().Underlying().(*types.Struct); ok {
				st = os
			}
		}
	}
	fs := make([]*types.Var, st.NumFields())
	idx := -1
	for j := range fs {
		fs[j] = st.Field(j)
		if fs[j].Name() == name {
			idx = j
		}
	}
	return fs, idx
}

// sideOf declares (once) the side table of type tn's new fields (an
// rt.Side) and returns the name of its accessor: func(*T) *side.
func (g *gen) sideOf(tn *types.TypeName, where string) string {
	k := g.pkgIndex[tn.Pkg().Path()]
	base := fmt.Sprintf("p%d_side_%s", k, tn.Name())
	if g.sideDone[tn] {
		return base + "_of"
	}
	g.sideDone[tn] = true
	st := tn.Type().Underlying().(*types.Struct)
	var fields strings.Builder
	for i := range st.NumFields() {
		f := st.Field(i)
		if g.side[tn][f.Name()] {
			fmt.Fprintf(&fields, "\t%s %s\n", f.Name(), g.typeExpr(f.Type(), where))
		}
	}
	T := g.typeExpr(tn.Type(), where)
	// rt.Side keys the fields weakly by object and remembers the last
	// object looked up (docs/patch.md, side tables).
	g.out = append(g.out, fmt.Sprintf(`// %[1]s holds the fields %[2]s gained, for objects of the running
// program's layout. Objects created before the patch start at zero values.
type %[1]s struct {
%[3]s}

var %[1]s_t %[4]s.Side[%[2]s, %[1]s]

// %[1]s_of is not inlined, so that the caches' of is.
//
//go:noinline
func %[1]s_of(p *%[2]s) *%[1]s { return %[1]s_t.Of(p) }

// %[1]s_c is one function call's memory of the last object whose fields
// it reached: a compare per access instead of a call (of inlines).
type %[1]s_c struct {
	k *%[2]s
	v *%[1]s
}

func (c *%[1]s_c) of(p *%[2]s) *%[1]s {
	if c.k != p {
		c.k, c.v = p, %[1]s_of(p)
	}
	return c.v
}`, base, T, fields.String(), g.rtName()))
	return base + "_of"
}
