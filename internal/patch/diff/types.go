package diff

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/graftdev/graft/api"
)

// methodSet holds "name signature" keys; unexported names carry their
// package path, since m in p and m in q are different methods.
type methodSet map[string]bool

func methodKey(f *types.Func) string {
	name := f.Name()
	if !f.Exported() && f.Pkg() != nil {
		name = f.Pkg().Path() + "." + name
	}
	sig := f.Type().(*types.Signature)
	// Drop the receiver: it differs between an interface and its implementer.
	plain := types.NewSignatureType(nil, nil, nil, sig.Params(), sig.Results(), sig.Variadic())
	return name + " " + types.TypeString(plain, qualifier)
}

func methodsOf(t types.Type) methodSet {
	ms := types.NewMethodSet(t)
	s := methodSet{}
	for i := range ms.Len() {
		if f, ok := ms.At(i).Obj().(*types.Func); ok {
			s[methodKey(f)] = true
		}
	}
	return s
}

func (s methodSet) equal(o methodSet) bool {
	if len(s) != len(o) {
		return false
	}
	for k := range s {
		if !o[k] {
			return false
		}
	}
	return true
}

func (s methodSet) has(iface methodSet) bool {
	for k := range iface {
		if !s[k] {
			return false
		}
	}
	return true
}

// interfaces collects every non-empty interface either version of the
// program can test a value against: named interfaces of the trees' packages
// and of everything they import, and interface literals used in the trees
// (x.(interface{ M() })). Satisfaction of all of them must not change.
func interfaces(trees ...*Tree) map[string]methodSet {
	out := map[string]methodSet{}
	seen := map[*types.Package]bool{}
	var walk func(p *types.Package)
	walk = func(p *types.Package) {
		if seen[p] {
			return
		}
		seen[p] = true
		scope := p.Scope()
		for _, name := range scope.Names() {
			tn, ok := scope.Lookup(name).(*types.TypeName)
			if !ok || tn.IsAlias() {
				continue
			}
			if it, ok := tn.Type().Underlying().(*types.Interface); ok && it.NumMethods() > 0 && !isConstraint(it) {
				out[p.Path()+"."+name] = ifaceMethods(it)
			}
		}
		for _, imp := range p.Imports() {
			walk(imp)
		}
	}
	for _, t := range trees {
		for _, p := range t.Pkgs {
			walk(p.Types)
			for _, tv := range p.TypesInfo.Types {
				if it, ok := tv.Type.(*types.Interface); ok && it.NumMethods() > 0 && !isConstraint(it) {
					out[types.TypeString(it, qualifier)] = ifaceMethods(it)
				}
			}
		}
	}
	return out
}

func isConstraint(it *types.Interface) bool { return !it.IsMethodSet() }

func ifaceMethods(it *types.Interface) methodSet {
	s := methodSet{}
	for i := range it.NumMethods() {
		s[methodKey(it.Method(i))] = true
	}
	return s
}

func (dd *differ) diffTypes(path string, o, n *pkgDecls) {
	for _, name := range slices.Sorted(maps.Keys(n.types)) {
		id := path + "." + name
		nt := n.types[name]
		ot, ok := o.types[name]
		if !ok {
			dd.add(id, api.PatchType, api.Added, true, "new type: travels in the patch")
			continue
		}
		if ot.IsAlias() != nt.IsAlias() {
			dd.add(id, api.PatchType, api.Changed, false, "type changed between alias and defined type")
			continue
		}
		if ot.IsAlias() {
			if a, b := types.TypeString(ot.Type(), qualifier), types.TypeString(nt.Type(), qualifier); a != b {
				dd.add(id, api.PatchType, api.Changed, false, "alias now names another type: %s → %s", a, b)
			}
			continue
		}
		if why, added := layoutChange(ot.Type().Underlying(), nt.Type().Underlying()); why != "" {
			if len(added) > 0 {
				if refusal := dd.sideTableOK(nt, added); refusal == "" {
					dd.add(id, api.PatchType, api.Changed, true, "adds field(s) %s: kept in a side table keyed by the object's address (weakly); objects created before the patch see the zero value", strings.Join(added, ", "))
					dd.diffMethodSets(id, ot.Type(), nt.Type())
					continue
				} else {
					why += "; no side table: " + refusal
				}
			}
			dd.add(id, api.PatchType, api.Changed, false, "%s", why)
			continue
		}
		if _, isIface := nt.Type().Underlying().(*types.Interface); isIface {
			continue
		}
		dd.diffMethodSets(id, ot.Type(), nt.Type())
	}
	for _, name := range slices.Sorted(maps.Keys(o.types)) {
		if _, ok := n.types[name]; !ok {
			dd.add(path+"."+name, api.PatchType, api.Removed, true, "removed type: stays in the program, unused by patched code")
		}
	}
}

// diffMethodSets refuses a method-set change that makes T or *T satisfy an
// interface it did not, or stop satisfying one it did: the running
// program's type descriptors and itabs cannot change.
func (dd *differ) diffMethodSets(id string, ot, nt types.Type) {
	for _, ptr := range []bool{false, true} {
		a, b := ot, nt
		name := id
		if ptr {
			a, b = types.NewPointer(ot), types.NewPointer(nt)
			name = "*" + id
		}
		om, nm := methodsOf(a), methodsOf(b)
		if om.equal(nm) {
			continue
		}
		var gained, lost []string
		for _, k := range slices.Sorted(maps.Keys(dd.ifaces)) {
			was, is := om.has(dd.ifaces[k]), nm.has(dd.ifaces[k])
			switch {
			case is && !was:
				gained = append(gained, k)
			case was && !is:
				lost = append(lost, k)
			}
		}
		if len(gained)+len(lost) == 0 {
			continue
		}
		var parts []string
		if len(gained) > 0 {
			parts = append(parts, "now satisfies "+list(gained))
		}
		if len(lost) > 0 {
			parts = append(parts, "no longer satisfies "+list(lost))
		}
		dd.add(id, api.PatchType, api.Changed, false, "method set change alters interface satisfaction: %s %s", name, strings.Join(parts, " and "))
		return
	}
}

func list(s []string) string {
	if len(s) > 4 {
		return strings.Join(s[:4], ", ") + fmt.Sprintf(" and %d more", len(s)-4)
	}
	return strings.Join(s, ", ")
}

type field struct {
	name, typ, tag string
	embedded       bool
}

func fields(s *types.Struct) []field {
	out := make([]field, s.NumFields())
	for i := range s.NumFields() {
		f := s.Field(i)
		out[i] = field{name: f.Name(), typ: types.TypeString(f.Type(), qualifier), tag: s.Tag(i), embedded: f.Embedded()}
	}
	return out
}

// layoutChange says how the underlying type changed, or "" when it did
// not; added lists the fields of a struct that only gained fields.
func layoutChange(o, n types.Type) (string, []string) {
	a, b := types.TypeString(o, qualifier), types.TypeString(n, qualifier)
	if a == b {
		return "", nil
	}
	os, ok1 := o.(*types.Struct)
	ns, ok2 := n.(*types.Struct)
	if !ok1 || !ok2 {
		if _, ok := n.(*types.Interface); ok {
			return fmt.Sprintf("interface changed: %s → %s (itabs of the running program are fixed)", short(a), short(b)), nil
		}
		return fmt.Sprintf("type layout change: %s → %s", short(a), short(b)), nil
	}
	of, nf := fields(os), fields(ns)
	if len(of) == len(nf) {
		onlyTags := true
		for i := range of {
			x, y := of[i], nf[i]
			x.tag, y.tag = "", ""
			if x != y {
				onlyTags = false
			}
		}
		if onlyTags {
			return "struct tags changed: reflection (encoding/json and others) reads them from the running program's type descriptors", nil
		}
	}
	// Is the old field list a subsequence of the new one? Then the change
	// only adds fields.
	var added []string
	i := 0
	for _, f := range nf {
		if i < len(of) && of[i] == f {
			i++
			continue
		}
		added = append(added, f.name)
	}
	if i == len(of) && len(added) > 0 {
		sort.Strings(added)
		return fmt.Sprintf("adds struct field(s) %s: objects in the running program have the old layout", strings.Join(added, ", ")), added
	}
	return fmt.Sprintf("struct layout change: %s → %s", short(a), short(b)), nil
}

// sideTableOK says why the new fields of nt cannot live in a side table
// keyed by the object's address, or "" when they can: they must be
// unexported (reflection would not see them) and no value of the type may
// be copied by the new code (a copy would lose them), so every use of a
// value of the type is a field or method access or has its address taken.
func (dd *differ) sideTableOK(nt *types.TypeName, added []string) string {
	named, ok := nt.Type().(*types.Named)
	if !ok || named.TypeParams() != nil {
		return "generic or alias type"
	}
	for _, f := range added {
		if ast.IsExported(f) {
			return "new field " + f + " is exported (reflection and encoders would not see it)"
		}
	}
	want := types.TypeString(named, qualifier)
	for i := range named.NumMethods() {
		m := named.Method(i)
		if _, ptr := m.Type().(*types.Signature).Recv().Type().(*types.Pointer); !ptr {
			return "method " + m.Name() + " has a value receiver (copies the object)"
		}
	}
	for _, path := range slices.Sorted(maps.Keys(dd.new)) {
		p := dd.new[path].pkg
		for _, f := range p.Syntax {
			var bad string
			ast.PreorderStack(f, nil, func(n ast.Node, stack []ast.Node) bool {
				if bad != "" {
					return false
				}
				if rs, ok := n.(*ast.RangeStmt); ok && rs.Value != nil {
					if t := p.TypesInfo.TypeOf(rs.Value); t != nil && types.TypeString(t, qualifier) == want {
						bad = fmt.Sprintf("range copies values of %s at %s", nt.Name(), p.Fset.Position(rs.Pos()))
						return false
					}
				}
				e, ok := n.(ast.Expr)
				if !ok {
					return true
				}
				tv, ok := p.TypesInfo.Types[e]
				if !ok || tv.IsType() || tv.Type == nil || types.TypeString(tv.Type, qualifier) != want {
					return true
				}
				// Find the first enclosing node that is not a paren.
				var parent ast.Node
				for i := len(stack) - 1; i >= 0; i-- {
					if _, paren := stack[i].(*ast.ParenExpr); !paren {
						parent = stack[i]
						break
					}
				}
				switch par := parent.(type) {
				case *ast.SelectorExpr:
					if ast.Unparen(par.X) == e {
						return true
					}
				case *ast.UnaryExpr:
					if par.Op == token.AND {
						return true
					}
				case *ast.AssignStmt:
					// A reset, *p = T{...}: the generator resets the side
					// fields with it.
					if par.Tok == token.ASSIGN && len(par.Lhs) == 1 && len(par.Rhs) == 1 {
						if _, lit := ast.Unparen(par.Rhs[0]).(*ast.CompositeLit); lit {
							return true
						}
					}
				case *ast.KeyValueExpr, *ast.CompositeLit:
					// A field of an enclosing literal: stored inline, its
					// address is that of the enclosing object's field.
					if _, lit := e.(*ast.CompositeLit); lit {
						return true
					}
				}
				bad = fmt.Sprintf("a value of %s is copied at %s", nt.Name(), p.Fset.Position(e.Pos()))
				return false
			})
			if bad != "" {
				return bad
			}
		}
	}
	return ""
}
