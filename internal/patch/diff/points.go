package diff

import (
	"go/ast"
	"go/types"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/graftdev/graft/api"
)

// ref is one reference to a package-level function.
type ref struct {
	from  string // id of the enclosing function, "" at package level
	value bool   // used as a value, not called
}

// refs indexes, in the new tree, who references each function.
func (dd *differ) refs() map[string][]ref {
	out := map[string][]ref{}
	for _, path := range slices.Sorted(maps.Keys(dd.new)) {
		d := dd.new[path]
		info := d.pkg.TypesInfo
		for _, f := range d.pkg.Syntax {
			for _, decl := range f.Decls {
				from, isInit := declFunc(info, decl)
				if isInit {
					from = path + ".init"
				}
				called := map[*ast.Ident]bool{}
				ast.Inspect(decl, func(n ast.Node) bool {
					if c, ok := n.(*ast.CallExpr); ok {
						fun := ast.Unparen(c.Fun)
						if ix, ok := fun.(*ast.IndexExpr); ok {
							fun = ix.X
						}
						switch fun := fun.(type) {
						case *ast.Ident:
							called[fun] = true
						case *ast.SelectorExpr:
							called[fun.Sel] = true
						}
					}
					return true
				})
				ast.Inspect(decl, func(n ast.Node) bool {
					id, ok := n.(*ast.Ident)
					if !ok {
						return true
					}
					fn, ok := info.Uses[id].(*types.Func)
					if !ok {
						return true
					}
					fn = fn.Origin()
					out[funcID(fn)] = append(out[funcID(fn)], ref{from: from, value: !called[id]})
					return true
				})
			}
		}
	}
	return out
}

// placePoints decides how each changed function reaches the running
// program: through its own patch point, or, when it has none (an inlinable
// leaf the build left out), by recompiling every caller up to ones that
// have a point.
func (dd *differ) placePoints(changed, resigned []*funcDecl) {
	has := dd.opts.HasPoint
	if has == nil {
		has = func(string) (bool, string) { return true, "" }
	}
	slots := map[string]bool{}
	replaced := map[string]bool{}  // admitted changed functions, with or without a point
	callers := map[string]string{} // caller id → the callee that brought it in
	var index map[string][]ref
	for _, f := range changed {
		if ok, _ := has(f.id); ok {
			slots[f.id] = true
			dd.add(f.id, api.PatchFunc, api.Changed, true, "body replaced through its patch point")
			continue
		}
		_, why := has(f.id)
		if index == nil {
			index = dd.refs()
		}
		found, refusal := dd.climb(f, index, has)
		if refusal != "" {
			dd.add(f.id, api.PatchFunc, api.Changed, false, "no patch point (%s) and %s", why, refusal)
			continue
		}
		replaced[f.id] = true
		if len(found) == 0 {
			dd.add(f.id, api.PatchFunc, api.Changed, true, "no patch point (%s): nothing in the target program calls it except code this patch replaces", why)
		} else {
			dd.add(f.id, api.PatchFunc, api.Changed, true, "no patch point (%s): recompiled into its instrumented callers %s", why, strings.Join(found, ", "))
		}
		for _, c := range found {
			if _, ok := callers[c]; !ok {
				callers[c] = f.id
			}
		}
	}
	// A new signature is a new function: it travels in the patch, and every
	// caller (all in its package, since it is unexported) is recompiled to
	// call it.
	for _, f := range resigned {
		if index == nil {
			index = dd.refs()
		}
		found, refusal := dd.climb(f, index, has)
		if refusal != "" {
			dd.add(f.id, api.PatchFunc, api.Changed, false, "signature change (%s → %s) and %s", f.oldSig, f.sig, refusal)
			continue
		}
		replaced[f.id] = true
		dd.add(f.id, api.PatchFunc, api.Changed, true, "signature change (%s → %s): travels in the patch as a new function; callers recompiled: %s", f.oldSig, f.sig, strings.Join(found, ", "))
		for _, c := range found {
			if _, ok := callers[c]; !ok {
				callers[c] = f.id
			}
		}
	}
	dd.placeRenewals(replaced, slots, callers, index, has)
	for _, c := range slices.Sorted(maps.Keys(callers)) {
		if slots[c] {
			continue
		}
		slots[c] = true
		dd.add(c, api.PatchCaller, api.Changed, true, "unchanged body recompiled: it calls %s, which has no patch point or a new signature", callers[c])
	}
	for s := range slots {
		dd.report.Slots = append(dd.report.Slots, s)
	}
	sort.Strings(dd.report.Slots)
}

// climb walks up the callers of f until every path ends in a function with
// a patch point. It refuses when f (or a pointless caller) is used as a
// value, referenced at package level, exported (callers outside the tree are
// unknown), a method an interface can reach, or has no caller at all.
func (dd *differ) climb(f *funcDecl, index map[string][]ref, has func(string) (bool, string)) ([]string, string) {
	seen := map[string]bool{f.id: true}
	queue := []*types.Func{f.obj}
	var found []string
	for len(queue) > 0 {
		fn := queue[0]
		queue = queue[1:]
		id := funcID(fn)
		if fn.Exported() {
			outside, known := dd.outsideCallers(id)
			switch {
			case !known:
				return nil, id + " is exported: callers outside the diffed tree would keep the old body"
			case len(outside) > 0:
				return nil, id + " is exported and called outside the diffed tree by " + list(outside) + ", which would keep the old body"
			}
			// The whole target program was searched: every caller is in
			// the tree, and is climbed below like an unexported one's.
		}
		if sig := fn.Type().(*types.Signature); sig.Recv() != nil {
			k := methodKey(fn)
			for _, name := range slices.Sorted(maps.Keys(dd.ifaces)) {
				if dd.ifaces[name][k] {
					return nil, id + " is a method that interface " + name + " can dispatch to"
				}
			}
		}
		rs := index[id]
		if len(rs) == 0 {
			if _, known := dd.outsideCallers(id); known && fn.Exported() {
				continue // no caller anywhere in the program: the old body is unreachable
			}
			return nil, id + " has no caller in the tree"
		}
		for _, r := range rs {
			switch {
			case r.value:
				return nil, id + " is used as a function value (in " + orPkg(r.from) + ")"
			case r.from == "" || strings.HasSuffix(r.from, ".init"):
				return nil, id + " is called at package initialization (" + orPkg(r.from) + ")"
			case seen[r.from]:
				continue
			case dd.added(r.from):
				// A new function is not in the running program: it travels
				// in the patch and calls the new version itself.
				continue
			}
			seen[r.from] = true
			if ok, _ := has(r.from); ok {
				found = append(found, r.from)
				continue
			}
			obj := dd.lookupFunc(r.from)
			if obj == nil {
				return nil, "caller " + r.from + " cannot be recompiled"
			}
			queue = append(queue, obj)
		}
	}
	sort.Strings(found)
	return found, ""
}

// outsideCallers returns the functions of the target program outside the
// diffed tree that reference function id, and whether the program was
// searched at all (Options.Callers).
func (dd *differ) outsideCallers(id string) ([]string, bool) {
	if dd.opts.Callers == nil {
		return nil, false
	}
	return dd.opts.Callers(id)
}

// added reports whether function id is new in the new tree.
func (dd *differ) added(id string) bool {
	for _, d := range dd.old {
		if _, ok := d.funcs[id]; ok {
			return false
		}
	}
	return dd.lookupFunc(id) != nil
}

func orPkg(from string) string {
	if from == "" {
		return "a package-level declaration"
	}
	return from
}

func (dd *differ) lookupFunc(id string) *types.Func {
	for _, d := range dd.new {
		if f, ok := d.funcs[id]; ok && !f.generic {
			return f.obj
		}
	}
	return nil
}

// declFunc returns the point id of a top-level function declaration and
// whether it is a package init function; "" for other declarations.
func declFunc(info *types.Info, decl ast.Decl) (id string, isInit bool) {
	fd, ok := decl.(*ast.FuncDecl)
	if !ok {
		return "", false
	}
	obj, ok := info.Defs[fd.Name].(*types.Func)
	if !ok {
		return "", false
	}
	return funcID(obj), fd.Recv == nil && fd.Name.Name == "init"
}
