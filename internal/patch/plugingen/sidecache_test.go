package plugingen

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"testing"
)

// TestHoistRules: a parameter's side entry is looked up once only where
// that cannot run an access before the lookup, nor look up what the
// original would not reach.
func TestHoistRules(t *testing.T) {
	const src = `package p

type T struct{ n int }

func g() bool { return true }

func first(p *T)       { p.n++; p.n-- }
func inCond(p *T)      { if p.n > 0 { p.n = 0 } }
func afterIf(p *T)     { if g() { return }; p.n = 1 }
func nested(p *T)      { if g() { p.n = 1 } }
func rightOfAnd(p *T)  { _ = g() && p.n > 0 }
func leftOfAnd(p *T)   { _ = p.n > 0 && g() }
func inLiteral(p *T)   { f := func() { p.n++ }; f() }
func inLoop(p *T)      { for i := 0; i < 3; i++ { p.n++ } }
func reassigned(p *T)  { p.n++; p = nil }
func addressed(p *T)   { p.n++; q := &p; _ = q }
func withGoto(p *T)    { goto L; L: p.n++ }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Defs: map[*ast.Ident]types.Object{}}
	if _, err := (&types.Config{Importer: importer.Default()}).Check("p", fset, []*ast.File{f}, info); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"first": true, "inCond": true, "afterIf": true, "leftOfAnd": true}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Type.Params.NumFields() == 0 {
			continue
		}
		p := info.Defs[fd.Type.Params.List[0].Names[0]]
		var access *ast.SelectorExpr // the first p.n
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			if s, ok := n.(*ast.SelectorExpr); ok && access == nil {
				if x, ok := s.X.(*ast.Ident); ok && info.Uses[x] == p {
					access = s
				}
			}
			return access == nil
		})
		got := !hasGoto(fd.Body) && !assigned(fd.Body, p, info) && unconditionalIn(fd.Body, access) != nil
		if got != want[fd.Name.Name] {
			t.Errorf("%s: hoisted = %v, want %v", fd.Name.Name, got, want[fd.Name.Name])
		}
	}
}
