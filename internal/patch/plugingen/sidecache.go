// Per-call caches of side tables. A function that reaches a new field
// reaches it through its object's side-table entry, and usually several
// times per call on the same object (d.depth++; if d.depth > max ...).
// Each function body that does declares, at its top, one small cache per
// type (the type's _c: the last object and its entry) and reaches the
// fields through it: an inlined pointer compare per access instead of a
// call. Function literals get caches of their own, since one may run on
// another goroutine.

package plugingen

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"slices"
	"strings"
)

// sideCacheVar names the per-call cache variable of the side table whose
// accessor is acc (p0_side_T_of → _graft_p0_side_T_c).
func sideCacheVar(acc string) string {
	return "_graft_" + strings.TrimSuffix(acc, "_of") + "_c"
}

// innermostBody returns the body of decl, or of the function literal in
// it, that most closely contains pos (nil when none does).
func innermostBody(decl *ast.FuncDecl, pos token.Pos) *ast.BlockStmt {
	var best *ast.BlockStmt
	ast.Inspect(decl, func(n ast.Node) bool {
		var body *ast.BlockStmt
		switch n := n.(type) {
		case *ast.FuncDecl:
			body = n.Body
		case *ast.FuncLit:
			body = n.Body
		}
		if body != nil && body.Pos() <= pos && pos < body.End() {
			best = body
		}
		return n == nil || n.Pos() <= pos && pos < n.End()
	})
	return best
}

// sideCaches returns the edits that declare the per-call caches: for each
// function body in decl with field compounds that reach side tables (and
// are not hoisted), its opening brace gains one variable per type, in
// order of first use.
func (g *gen) sideCaches(decl *ast.FuncDecl, compounds []compound, hoisted map[*ast.SelectorExpr]string, info *types.Info, off func(token.Pos) int, where string) []edit {
	need := map[*ast.BlockStmt][]string{}
	var order []*ast.BlockStmt
	for _, c := range compounds {
		if c.field == nil || hoisted[c.field] != "" {
			continue
		}
		tn := g.sideField(info.Selections[c.field])
		body := innermostBody(decl, c.field.Pos())
		if tn == nil || body == nil {
			continue
		}
		acc := g.sideOf(tn, where)
		decl := fmt.Sprintf("var %s %s_c;", sideCacheVar(acc), strings.TrimSuffix(acc, "_of"))
		if _, seen := need[body]; !seen {
			order = append(order, body)
		}
		if !slices.Contains(need[body], decl) {
			need[body] = append(need[body], decl)
		}
	}
	var edits []edit
	for _, body := range order {
		lb := off(body.Lbrace)
		edits = append(edits, edit{lb, lb + 1, "{ " + strings.Join(need[body], " ")})
	}
	return edits
}

// sideHoists finds the side-field accesses of decl whose object is one
// of its pointer parameters (or receiver) that the body never assigns nor
// takes the address of, and whose first access in the body is evaluated
// by a top-level statement whenever that statement runs. Such a
// parameter's entry is looked up once, just before that statement, into a
// local (_graft_sd_d := T_t.Cached(d), else T_t.Of(d)), and every access of d's new fields,
// there and after, is a field of that local: no compare at all. Source
// order is execution order for top-level statements when there is no
// goto, so the local is set before any access runs. Of returns nil for a
// nil object, so an access through it fails where the original's would.
// The result maps the hoisted accesses to their locals.
func (g *gen) sideHoists(decl *ast.FuncDecl, compounds []compound, info *types.Info, off func(token.Pos) int, where string) (map[*ast.SelectorExpr]string, []edit) {
	if decl.Body == nil || hasGoto(decl.Body) {
		return nil, nil
	}
	var params []*ast.Ident
	for _, fl := range []*ast.FieldList{decl.Recv, decl.Type.Params} {
		if fl != nil {
			for _, f := range fl.List {
				params = append(params, f.Names...)
			}
		}
	}
	hoist := map[*ast.SelectorExpr]string{}
	inserts := map[ast.Stmt][]string{}
	for _, id := range params {
		obj, ok := info.Defs[id].(*types.Var)
		if !ok || id.Name == "_" {
			continue
		}
		if _, ptr := types.Unalias(obj.Type()).(*types.Pointer); !ptr {
			continue
		}
		var tn *types.TypeName
		var uses []*ast.SelectorExpr
		for _, c := range compounds {
			if c.field == nil {
				continue
			}
			x, ok := ast.Unparen(c.field.X).(*ast.Ident)
			if !ok || info.Uses[x] != obj {
				continue
			}
			t := g.sideField(info.Selections[c.field])
			if t == nil {
				continue
			}
			if tn != nil && t != tn {
				uses = nil
				break
			}
			tn = t
			uses = append(uses, c.field)
		}
		if len(uses) == 0 || assigned(decl.Body, obj, info) {
			continue
		}
		first := slices.MinFunc(uses, func(a, b *ast.SelectorExpr) int { return int(a.Pos() - b.Pos()) })
		stmt := unconditionalIn(decl.Body, first)
		if stmt == nil {
			continue
		}
		local := "_graft_sd_" + id.Name
		for _, u := range uses {
			hoist[u] = local
		}
		table := strings.TrimSuffix(g.sideOf(tn, where), "_of") + "_t"
		inserts[stmt] = append(inserts[stmt], fmt.Sprintf("%[1]s := %[2]s.Cached(%[3]s); if %[1]s == nil { %[1]s = %[2]s.Of(%[3]s) };", local, table, id.Name))
	}
	var edits []edit
	for stmt, decls := range inserts {
		at := off(stmt.Pos())
		edits = append(edits, edit{at, at, strings.Join(decls, " ") + " "})
	}
	return hoist, edits
}

// unconditionalIn returns the top-level statement of body that evaluates
// x whenever it runs, or nil when x is reached only under a condition
// (a branch, a loop body, the right operand of && or ||, a function
// literal) or by no top-level statement.
func unconditionalIn(body *ast.BlockStmt, x ast.Node) ast.Stmt {
	for _, s := range body.List {
		if s.Pos() > x.Pos() || x.End() > s.End() {
			continue
		}
		var from ast.Node // the part of s that always runs
		switch s := s.(type) {
		case *ast.ExprStmt, *ast.IncDecStmt, *ast.AssignStmt, *ast.ReturnStmt, *ast.DeclStmt:
			from = s
		case *ast.IfStmt:
			if s.Init != nil && within(x, s.Init) {
				from = s.Init
			} else if within(x, s.Cond) {
				from = s.Cond
			}
		case *ast.SwitchStmt:
			if s.Init != nil && within(x, s.Init) {
				from = s.Init
			} else if s.Tag != nil && within(x, s.Tag) {
				from = s.Tag
			}
		}
		if from == nil || !alwaysEvaluated(from, x) {
			return nil
		}
		return s
	}
	return nil
}

func within(x, n ast.Node) bool { return n.Pos() <= x.Pos() && x.End() <= n.End() }

// alwaysEvaluated reports whether evaluating n always evaluates its
// descendant x: no function literal or && / || right operand lies between.
func alwaysEvaluated(n, x ast.Node) bool {
	ok := true
	ast.Inspect(n, func(m ast.Node) bool {
		if !ok || m == nil || !within(x, m) || m == x {
			return false
		}
		switch m := m.(type) {
		case *ast.FuncLit:
			ok = false
		case *ast.BinaryExpr:
			if (m.Op == token.LAND || m.Op == token.LOR) && within(x, m.Y) {
				ok = false
			}
		}
		return ok
	})
	return ok
}

// hasGoto reports whether body contains a goto statement.
func hasGoto(body *ast.BlockStmt) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		if b, ok := n.(*ast.BranchStmt); ok && b.Tok == token.GOTO {
			found = true
		}
		return !found
	})
	return found
}

// assigned reports whether body assigns obj or takes its address.
func assigned(body *ast.BlockStmt, obj types.Object, info *types.Info) bool {
	is := func(e ast.Expr) bool {
		id, ok := ast.Unparen(e).(*ast.Ident)
		return ok && (info.Uses[id] == obj || info.Defs[id] == obj)
	}
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			found = found || slices.ContainsFunc(n.Lhs, is)
		case *ast.IncDecStmt:
			found = found || is(n.X)
		case *ast.UnaryExpr:
			found = found || n.Op == token.AND && is(n.X)
		case *ast.RangeStmt:
			found = found || n.Key != nil && is(n.Key) || n.Value != nil && is(n.Value)
		}
		return !found
	})
	return found
}
