// Admissibility of a changed initializer of a package-level variable. The
// running program initialized the variable already, so the new value can
// only reach it as a new variable that travels in the patch, read by the
// replaced readers. That is sound only while the variable is read-only
// after initialization: nobody may assign it, take its address or keep a
// reference through which its contents could change, in either version.

package diff

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"maps"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/patch/plugingen"
)

// renewal is a variable whose initializer changed and that passed the
// read-only checks: its readers decide, in placePoints, whether it is
// admitted.
type renewal struct {
	id      string   // pkgpath.name
	change  string   // the reason's first part: what changed
	readers []string // function ids that read it in the new tree
}

// renewable says why variable name of package path cannot travel in the
// patch as a new variable, or "" and its readers when it can.
func (dd *differ) renewable(path, name string) ([]string, string) {
	if ast.IsExported(name) {
		return nil, "it is exported: code outside the diffed tree reads the running program's variable"
	}
	n, o := dd.new[path], dd.old[path]
	nv, _ := n.pkg.Types.Scope().Lookup(name).(*types.Var)
	ov, _ := o.pkg.Types.Scope().Lookup(name).(*types.Var)
	if nv == nil || ov == nil {
		return nil, "not a variable in both versions"
	}
	if spec, _ := plugingen.VarSpec(n.pkg, nv); spec == nil || len(spec.Values) != len(spec.Names) {
		return nil, "it is initialized from a multi-value expression or has no initializer"
	}
	oldReaders, why := readOnlyUses(o.pkg, ov)
	if why != "" {
		return nil, "not read-only after initialization in the running version: " + why
	}
	readers, why := readOnlyUses(n.pkg, nv)
	if why != "" {
		return nil, "not read-only after initialization in the new version: " + why
	}
	for _, r := range oldReaders {
		if dd.lookupFunc(r) == nil {
			return nil, "its reader " + r + " was removed: the running program may still call it, with the old value"
		}
	}
	return readers, ""
}

// readOnlyUses returns the functions of p that read v, or why v is not
// read-only after initialization: it is assigned (also through an index,
// field or dereference, or by delete, clear, copy or append), its address
// is taken (&v, &v[i], a pointer-receiver method of an addressable value,
// slicing an array), a reference into it escapes (a map, slice, pointer,
// channel, function or interface value, or one reached through it, stored
// or passed anywhere but as a method receiver, to len or cap, to range, or
// compared), or it is read at package initialization (init or another
// variable's initializer), which already ran with the old value. Methods
// called on it are trusted not to change what it points to (regexp's
// compiled programs, for example, are immutable).
func readOnlyUses(p *packages.Package, v *types.Var) ([]string, string) {
	info := p.TypesInfo
	readers := map[string]bool{}
	for _, f := range p.Syntax {
		for _, decl := range f.Decls {
			from, isInit := declFunc(info, decl)
			if isInit {
				from = "" // runs with package initialization
			}
			var why string
			ast.PreorderStack(decl, nil, func(n ast.Node, stack []ast.Node) bool {
				if why != "" {
					return false
				}
				id, ok := n.(*ast.Ident)
				if !ok || info.Uses[id] != v {
					return true
				}
				at := p.Fset.Position(id.Pos())
				where := fmt.Sprintf("%s:%d", shortFile(at.Filename), at.Line)
				if from == "" {
					why = "read at package initialization (" + where + "), which already ran with the old value"
					return false
				}
				if w := useKind(info, append(stack[:len(stack):len(stack)], id)); w != "" {
					why = w + " at " + where
					return false
				}
				readers[from] = true
				return true
			})
			if why != "" {
				return nil, why
			}
		}
	}
	return slices.Sorted(maps.Keys(readers)), ""
}

func shortFile(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// useKind classifies the use of a variable at the top of stack (an
// identifier, with its enclosing nodes below it): "" for a read that
// cannot change it, otherwise what the use does.
func useKind(info *types.Info, stack []ast.Node) string {
	i := len(stack) - 1
	cur := stack[i].(ast.Expr)
	parent := func() ast.Node {
		if i == 0 {
			return nil
		}
		return stack[i-1]
	}
	// Climb the access path: v, v[i], v.f, *v, (v), v[a:b].
	for {
		switch par := parent().(type) {
		case *ast.ParenExpr:
		case *ast.IndexExpr:
			if par.X != cur {
				goto done
			}
		case *ast.StarExpr:
		case *ast.SelectorExpr:
			if par.X != cur {
				goto done
			}
			if s := info.Selections[par]; s != nil && s.Kind() == types.MethodVal {
				// A method call on the path: a pointer receiver on an
				// addressable value takes its address.
				_, ptrRecv := s.Obj().Type().(*types.Signature).Recv().Type().(*types.Pointer)
				_, ptrX := info.TypeOf(cur).Underlying().(*types.Pointer)
				if ptrRecv && !ptrX {
					return "its address is taken by a pointer-receiver method call"
				}
				if call, ok := stackAt(stack, i-2).(*ast.CallExpr); ok && call.Fun == par {
					return ""
				}
				return "a method value of it escapes"
			}
		case *ast.SliceExpr:
			if par.X != cur {
				goto done
			}
			if _, arr := info.TypeOf(cur).Underlying().(*types.Array); arr {
				return "slicing the array takes its address"
			}
		default:
			goto done
		}
		i--
		cur = stack[i].(ast.Expr)
	}
done:
	switch par := parent().(type) {
	case *ast.AssignStmt:
		for _, l := range par.Lhs {
			if l == cur {
				return "assigned"
			}
		}
	case *ast.IncDecStmt:
		return "assigned"
	case *ast.RangeStmt:
		if par.Key == cur || par.Value == cur {
			return "assigned"
		}
		if par.X == cur {
			return ""
		}
	case *ast.UnaryExpr:
		if par.Op == token.AND {
			return "its address is taken"
		}
	case *ast.CallExpr:
		if b, ok := calleeBuiltin(info, par); ok {
			switch b {
			case "len", "cap":
				return ""
			case "delete", "clear", "copy", "append":
				if len(par.Args) > 0 && par.Args[0] == cur {
					return "changed by " + b
				}
			}
		}
	case *ast.BinaryExpr:
		if par.Op == token.EQL || par.Op == token.NEQ {
			return ""
		}
	}
	if holdsRefs(info.TypeOf(cur), map[types.Type]bool{}) {
		return "a reference into it (" + types.TypeString(info.TypeOf(cur), nil) + ") is stored or passed, and could be written through"
	}
	return ""
}

func stackAt(stack []ast.Node, i int) ast.Node {
	if i < 0 || i >= len(stack) {
		return nil
	}
	return stack[i]
}

func calleeBuiltin(info *types.Info, c *ast.CallExpr) (string, bool) {
	id, ok := ast.Unparen(c.Fun).(*ast.Ident)
	if !ok {
		return "", false
	}
	b, ok := info.Uses[id].(*types.Builtin)
	if !ok {
		return "", false
	}
	return b.Name(), true
}

// holdsRefs reports whether a value of t shares memory with its copies.
func holdsRefs(t types.Type, seen map[types.Type]bool) bool {
	if t == nil || seen[t] {
		return false
	}
	seen[t] = true
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return u.Kind() == types.UnsafePointer
	case *types.Struct:
		for i := range u.NumFields() {
			if holdsRefs(u.Field(i).Type(), seen) {
				return true
			}
		}
		return false
	case *types.Array:
		return holdsRefs(u.Elem(), seen)
	}
	return true
}

// placeRenewals admits or refuses each pending renewal once the slots of
// the changed functions are known: every reader must be replaced already,
// have a patch point (then it is recompiled), or be reached through
// instrumented callers like a pointless function.
func (dd *differ) placeRenewals(replaced, slots map[string]bool, callers map[string]string, index map[string][]ref, has func(string) (bool, string)) {
	for _, rn := range dd.renewals {
		var recompiled, via []string
		extra := map[string]string{} // reader without a point → "" (not a slot)
		refusal := ""
		for _, r := range rn.readers {
			switch {
			case replaced[r] || slots[r]:
				continue
			}
			if ok, _ := has(r); ok {
				recompiled = append(recompiled, r)
				continue
			}
			_, why := has(r)
			f := dd.lookupFuncDecl(r)
			if f == nil {
				refusal = "reader " + r + " cannot be recompiled"
				break
			}
			if index == nil {
				index = dd.refs()
			}
			found, no := dd.climb(f, index, has)
			if no != "" {
				refusal = fmt.Sprintf("reader %s has no patch point (%s) and %s", r, why, no)
				break
			}
			extra[r] = why
			via = append(via, found...)
		}
		if refusal != "" {
			dd.add(rn.id, api.PatchVar, api.Changed, false, "%s; the new value cannot travel in the patch: %s", rn.change, refusal)
			continue
		}
		for _, r := range recompiled {
			if _, ok := callers[r]; ok || slots[r] {
				continue // already recompiled for a callee
			}
			slots[r] = true
			dd.add(r, api.PatchCaller, api.Changed, true, "unchanged body recompiled: it reads %s, whose initializer changed", rn.id)
		}
		for _, r := range slices.Sorted(maps.Keys(extra)) {
			dd.add(r, api.PatchCaller, api.Changed, true, "no patch point (%s): unchanged body recompiled into its instrumented callers, because it reads %s, whose initializer changed", extra[r], rn.id)
		}
		for _, c := range via {
			if _, ok := callers[c]; ok || slots[c] {
				continue
			}
			slots[c] = true
			dd.add(c, api.PatchCaller, api.Changed, true, "unchanged body recompiled: it calls a reader of %s, whose initializer changed, that has no patch point", rn.id)
		}
		all := append(append([]string(nil), recompiled...), slices.Sorted(maps.Keys(extra))...)
		how := "no function reads it"
		if len(rn.readers) > 0 {
			how = "read by " + strings.Join(rn.readers, ", ")
			if len(all) > 0 {
				how += " (recompiled unchanged: " + strings.Join(all, ", ") + ")"
			}
		}
		dd.add(rn.id, api.PatchVar, api.Changed, true, "%s; read-only after initialization: the new value travels in the patch as a new variable, initialized when the patch loads; %s", rn.change, how)
	}
}

func (dd *differ) lookupFuncDecl(id string) *funcDecl {
	for _, d := range dd.new {
		if f, ok := d.funcs[id]; ok && !f.generic {
			return f
		}
	}
	return nil
}
