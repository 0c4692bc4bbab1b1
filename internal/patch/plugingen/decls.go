// The generator's index of the new tree's declarations, and the helpers
// the diff shares with it.

package plugingen

import (
	"go/ast"
	"go/token"
	"go/types"
	"os"
	"sync"

	"golang.org/x/tools/go/packages"
)

// pkgDecls is what the generator looks up in one package of the new tree.
type pkgDecls struct {
	pkg   *packages.Package
	funcs map[string]*funcDecl // by FuncID
	types map[string]*types.TypeName
}

type funcDecl struct {
	id      string
	decl    *ast.FuncDecl
	obj     *types.Func
	generic bool
}

func collect(p *packages.Package) *pkgDecls {
	d := &pkgDecls{pkg: p, funcs: map[string]*funcDecl{}, types: map[string]*types.TypeName{}}
	for _, f := range p.Syntax {
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if decl.Recv == nil && decl.Name.Name == "init" {
					continue
				}
				obj, _ := p.TypesInfo.Defs[decl.Name].(*types.Func)
				if obj == nil || decl.Name.Name == "_" {
					continue
				}
				d.funcs[FuncID(obj)] = &funcDecl{id: FuncID(obj), decl: decl, obj: obj, generic: IsGenericDecl(decl)}
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					if ts, ok := spec.(*ast.TypeSpec); ok {
						if tn, ok := p.TypesInfo.Defs[ts.Name].(*types.TypeName); ok && ts.Name.Name != "_" {
							d.types[ts.Name.Name] = tn
						}
					}
				}
			}
		}
	}
	return d
}

// VarSpec finds the declaration of package-level variable v in p: its
// spec and v's index among the spec's names (nil when p does not declare
// it).
func VarSpec(p *packages.Package, v *types.Var) (*ast.ValueSpec, int) {
	for _, f := range p.Syntax {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if p.TypesInfo.Defs[id] == v {
						return vs, i
					}
				}
			}
		}
	}
	return nil, 0
}

// FuncID is the id of a function or method as graft names patch points:
// pkgpath.F, pkgpath.T.M or pkgpath.(*T).M.
func FuncID(f *types.Func) string {
	sig, _ := f.Type().(*types.Signature)
	if sig == nil || sig.Recv() == nil || f.Pkg() == nil {
		return f.FullName()
	}
	t := sig.Recv().Type()
	ptr := false
	if p, ok := t.(*types.Pointer); ok {
		t, ptr = p.Elem(), true
	}
	name := "?"
	switch t := types.Unalias(t).(type) {
	case *types.Named:
		name = t.Obj().Name()
	case *types.Interface:
		return f.FullName()
	}
	if ptr {
		return f.Pkg().Path() + ".(*" + name + ")." + f.Name()
	}
	return f.Pkg().Path() + "." + name + "." + f.Name()
}

// IsGenericDecl reports whether d declares a generic function or a method
// of a generic type.
func IsGenericDecl(d *ast.FuncDecl) bool {
	if d.Type.TypeParams != nil && len(d.Type.TypeParams.List) > 0 {
		return true
	}
	if d.Recv != nil && len(d.Recv.List) == 1 {
		t := d.Recv.List[0].Type
		if s, ok := t.(*ast.StarExpr); ok {
			t = s.X
		}
		switch t.(type) {
		case *ast.IndexExpr, *ast.IndexListExpr:
			return true
		}
	}
	return false
}

// sources caches files by name: every printer and rewriter reads the same
// few files many times.
var sources sync.Map // filename → []byte

// ReadSource returns the contents of file name, cached.
func ReadSource(name string) ([]byte, error) {
	if b, ok := sources.Load(name); ok {
		return b.([]byte), nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	sources.Store(name, b)
	return b, nil
}
