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
// function body in decl with field compounds that reach side tables, its
// opening brace gains one variable per type, in order of first use.
func (g *gen) sideCaches(decl *ast.FuncDecl, compounds []compound, info *types.Info, off func(token.Pos) int, where string) []edit {
	need := map[*ast.BlockStmt][]string{}
	var order []*ast.BlockStmt
	for _, c := range compounds {
		if c.field == nil {
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
