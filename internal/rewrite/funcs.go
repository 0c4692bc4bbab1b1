package rewrite

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path/filepath"
	"strings"

	"github.com/graftdev/graft/api"
)

var errorType = types.Universe.Lookup("error").Type()

// funcDecl gives fd a patch point and its check sites, or records why not.
func (r *rewriter) funcDecl(fs *fileState, fd *ast.FuncDecl) {
	switch {
	case fd.Body == nil:
		r.skip(fd, fs.name, "no body")
		return
	case fd.Name.Name == "init" && fd.Recv == nil:
		r.skip(fd, fs.name, "init")
		return
	case fd.Name.Name == "_":
		r.skip(fd, fs.name, "blank name")
		return
	case fd.Type.TypeParams != nil || genericRecv(fd):
		r.skip(fd, fs.name, "generic")
		r.recoverSites(fs, fd)
		return
	}
	for _, d := range unsafeDirectives {
		if hasDirective(fd, d) {
			r.skip(fd, fs.name, "directive //go:"+d)
			return
		}
	}
	if _, fn := r.funcID(fd); r.cfg.Budget > 0 && r.cfg.Inlinable != nil {
		// Recursive functions keep their point and depth site: the gc
		// compiler inlines one level of a small recursive function,
		// which is little to lose against stack exhaustion.
		if r.cfg.Inlinable[fn] && !r.recursive(fd) {
			r.skip(fd, fs.name, "inlined by the compiler (go build -gcflags=-m: can inline)")
			r.recoverSites(fs, fd)
			return
		}
		if r.frameless(fd.Body) && !r.recursive(fd) {
			r.skip(fd, fs.name, "leaf: calls nothing the compiler does not inline, so a prologue would add a stack frame and a stack check")
			r.recoverSites(fs, fd)
			return
		}
	} else if r.cfg.Budget > 0 {
		if n, leaf := r.leafSize(fd.Body); leaf && n <= r.cfg.Budget {
			r.skip(fd, fs.name, fmt.Sprintf("inlinable leaf (%d nodes <= budget %d)", n, r.cfg.Budget))
			r.recoverSites(fs, fd)
			return
		}
	}
	r.n++
	k := r.n
	pv := fmt.Sprintf("_graft_p%d", k)
	id, fn := r.funcID(fd)

	// Name the receiver, unnamed or blank parameters, and (for functions
	// with an error result) the results, so the prologue can pass them on.
	var args []string
	var typs []string
	var hide []string // per parameter: its type as a value, "" when it holds no pointer
	if fd.Recv != nil {
		f := fd.Recv.List[0]
		args = append(args, r.nameField(fs, f, "_graft_recv", 0)...)
		typs = append(typs, fs.text(f.Type))
		hide = append(hide, r.leaked(fs, f, 0, r.hidden(fs, f.Type)))
	}
	variadic := false
	for i, f := range fd.Type.Params.List {
		names := r.nameField(fs, f, "_graft_a", i)
		t := fs.text(f.Type)
		h := r.hidden(fs, f.Type)
		if _, ok := f.Type.(*ast.Ellipsis); ok {
			variadic = true
		}
		for j := range names {
			typs = append(typs, t)
			hide = append(hide, r.leaked(fs, f, j, h))
		}
		args = append(args, names...)
	}
	if variadic {
		args[len(args)-1] += "..."
	}
	var results []string
	var resTypes []string
	errRet := false
	if fl := fd.Type.Results; fl != nil && len(fl.List) > 0 {
		last := fl.List[len(fl.List)-1]
		if t := r.in.Info.TypeOf(last.Type); t != nil && types.Identical(t, errorType) {
			errRet = true
		}
		for _, f := range fl.List {
			n := len(f.Names)
			if n == 0 {
				n = 1
			}
			for range n {
				resTypes = append(resTypes, fs.text(f.Type))
			}
		}
		if errRet {
			if fl.Opening == token.NoPos {
				fs.add(edit{off: fs.off(fl.Pos()), end: fs.off(fl.Pos()), text: "(", class: 2, span: 1 << 30})
				fs.add(edit{off: fs.off(fl.End()), end: fs.off(fl.End()), text: ")", class: 0, span: 1 << 30})
			}
			for i, f := range fl.List {
				results = append(results, r.nameField(fs, f, "_graft_r", i)...)
			}
		}
	}
	alias := fmt.Sprintf("_graft_t%d", k)
	sig := "func(" + strings.Join(typs, ", ") + ")"
	switch {
	case len(resTypes) == 1:
		sig += " " + resTypes[0]
	case len(resTypes) > 1:
		sig += " (" + strings.Join(resTypes, ", ") + ")"
	}

	// Sites first: they decide whether the prologue enters depth counting.
	var sites []siteRef
	if !r.cfg.NoSites {
		sites = r.sites(fs, fd, id, fn)
	}

	// The dormant path is a compare of the word with zero and a branch
	// (AtomicLoad: sync/atomic's intrinsic load, a test and a branch;
	// never a method call, which leaves an inline-mark NOP behind).
	// Sealed and patched calls
	// leave through a tail call to a generated function out of line that
	// returns the results, so no value of the function has to survive a
	// call on the dormant path (a call the body continues after makes the
	// compiler spill the arguments at entry). The word is not kept: make
	// and loop sites test their own switch.
	slow := fmt.Sprintf("_graft_slow%d", k)
	var ys []string
	for i := range resTypes {
		ys = append(ys, fmt.Sprintf("_graft_y%d", i))
	}
	callArgs := strings.Join(args, ", ")
	leave := fmt.Sprintf("return %s(%s)", slow, callArgs)
	if len(resTypes) == 0 {
		leave = fmt.Sprintf("%s(%s); return", slow, callArgs)
	}
	depth := ""
	for _, s := range sites {
		if s.kind == kindDepth {
			depth = s.v
		}
	}
	load := fmt.Sprintf("%s.W", pv) // a plain load: see Config.AtomicLoad
	if r.cfg.AtomicLoad {
		load = fmt.Sprintf("_graft_atomic.LoadUint32(&%s.W)", pv)
		fs.atomic = true
	}
	var pro strings.Builder
	if !errRet && depth == "" {
		// Only Sealed and Patched matter here, and both leave: one
		// compare of the word in memory (they are its highest bits)
		// whose branch always returns.
		fmt.Fprintf(&pro, " if %s >= _graft_rt.Sealed { %s };", load, leave)
	} else {
		if r.cfg.AtomicLoad {
			fmt.Fprintf(&pro, " if _graft_w := %s; _graft_w != 0 {", load)
		} else {
			// Compared in memory; loaded again (atomically) only
			// when not zero.
			fmt.Fprintf(&pro, " if %s != 0 { _graft_w := %s.Load();", load, pv)
		}
		fmt.Fprintf(&pro, " if _graft_w >= _graft_rt.Sealed { %s };", leave)
		if errRet {
			fmt.Fprintf(&pro, " if _graft_w&_graft_rt.Catch != 0 { defer _graft_rt.Recover(&%s) };", results[len(results)-1])
		}
		if depth != "" {
			fmt.Fprintf(&pro, " if _graft_w&_graft_rt.Sites != 0 { _graft_rt.Depth(&%s) };", depth)
		}
		pro.WriteString(" };")
	}
	var xs, xargs, yres []string
	for i, t := range typs {
		xs = append(xs, fmt.Sprintf("_graft_x%d %s", i, t))
		a := fmt.Sprintf("_graft_x%d", i)
		if hide[i] != "" {
			// The replacement is called through a func value, which
			// makes escape analysis move everything a pointer argument
			// reaches to the heap, in every caller, patched or not.
			// NoEscape hides the flow, so callers keep the plain build's
			// allocations; a replacement must then not retain pointer
			// arguments that the original does not (docs/rt.md).
			a = fmt.Sprintf("*(*%s)(_graft_rt.NoEscape(_graft_rt.Pointer(&%s)))", hide[i], a)
		}
		if variadic && i == len(typs)-1 {
			a += "..."
		}
		xargs = append(xargs, a)
	}
	for i, t := range resTypes {
		yres = append(yres, fmt.Sprintf("_graft_y%d %s", i, t))
	}
	// The original function again, for a call that found the point
	// sealed or patched and then neither (unsealed or reverted since):
	// its prologue reloads the word.
	var xnames []string
	for i := range typs {
		xnames = append(xnames, fmt.Sprintf("_graft_x%d", i))
	}
	if variadic {
		xnames[len(xnames)-1] += "..."
	}
	again := fd.Name.Name + "(" + strings.Join(xnames, ", ") + ")"
	if fd.Recv != nil {
		again = xnames[0] + "." + fd.Name.Name + "(" + strings.Join(xnames[1:], ", ") + ")"
	}
	res := ""
	if len(yres) > 0 {
		res = " (" + strings.Join(yres, ", ") + ")"
	}
	fmt.Fprintf(&fs.tail, "//go:noinline\nfunc %s(%s)%s {\n", slow, strings.Join(xs, ", "), res)
	if errRet {
		// A replacement's panic is converted as the body's would be.
		fmt.Fprintf(&fs.tail, "\tif %s.Load()&_graft_rt.Catch != 0 {\n\t\tdefer _graft_rt.Recover(&%s)\n\t}\n", pv, ys[len(ys)-1])
	}
	// The replacement variable: a plain read, like the word's (a
	// word-sized read observes some value written); -race builds load it
	// atomically through rt, which needs it in memory to convert it.
	slot := fmt.Sprintf("_graft_f%d", k)
	if r.cfg.AtomicLoad {
		fmt.Fprintf(&fs.tail, "\t_graft_fp := _graft_rt.LoadSlot(_graft_rt.Pointer(&%s))\n", slot)
		fmt.Fprintf(&fs.tail, "\tif _graft_f := *(*%s)(_graft_rt.Pointer(&_graft_fp)); _graft_f != nil {\n", alias)
	} else {
		fmt.Fprintf(&fs.tail, "\tif _graft_f := %s; _graft_f != nil {\n", slot)
	}
	if len(resTypes) > 0 {
		fmt.Fprintf(&fs.tail, "\t\treturn _graft_f(%s)\n\t}\n", strings.Join(xargs, ", "))
	} else {
		fmt.Fprintf(&fs.tail, "\t\t_graft_f(%s)\n\t\treturn\n\t}\n", strings.Join(xargs, ", "))
	}
	fmt.Fprintf(&fs.tail, "\tif %s.Load()&_graft_rt.Sealed != 0 {\n", pv)
	if errRet {
		fmt.Fprintf(&fs.tail, "\t\t%s = %s.Err()\n\t\treturn\n\t}\n", ys[len(ys)-1], pv)
	} else {
		fmt.Fprintf(&fs.tail, "\t\tpanic(%s.Err())\n\t}\n", pv)
	}
	if len(resTypes) > 0 {
		fmt.Fprintf(&fs.tail, "\treturn %s\n}\n\n", again)
	} else {
		fmt.Fprintf(&fs.tail, "\t%s\n\treturn\n}\n\n", again)
	}
	lb := fs.off(fd.Body.Lbrace) + 1
	fs.add(edit{off: lb, end: lb, text: pro.String(), class: -1})

	tf := fs.tf
	fmt.Fprintf(&fs.tail, "type %s = %s\n\nvar %s _graft_rt.Point\nvar %s %s // the installed replacement (nil: none), written by rt\n", alias, sig, pv, slot, alias)
	fmt.Fprintf(&fs.inits, "\t_graft_rt.Register(&%s, _graft_rt.PointInfo{ID: %q, Package: %q, Func: %q, File: %q, Line: %d, ErrorRet: %v}, &%s)\n",
		pv, id, r.in.PkgPath, fn, fs.name, tf.Line(fd.Pos()), errRet, slot)
	for _, s := range sites {
		fmt.Fprintf(&fs.tail, "var %s _graft_rt.Site\n", s.v)
		fmt.Fprintf(&fs.inits, "\t_graft_rt.RegisterSite(&%s, &%s, _graft_rt.SiteInfo{ID: %q, Kind: %q, Point: %q, Package: %q, Func: %q, File: %q, Line: %d})\n",
			s.v, pv, s.site.ID, s.site.Kind, id, r.in.PkgPath, fn, fs.name, s.site.Line)
		r.out.Sites = append(r.out.Sites, s.site)
	}
	fs.tail.WriteString("\n")
	r.out.Points = append(r.out.Points, api.Point{ID: id, Package: r.in.PkgPath, Func: fn, File: fs.name,
		Line: tf.Line(fd.Pos()), EndLine: tf.Line(fd.End()), Type: r.typeString(fd), ErrorRet: errRet, Sites: len(sites)})
}

// nameField returns the names of f's entries, giving unnamed and blank ones
// generated names (prefix + index) by inserting or replacing text.
func (r *rewriter) nameField(fs *fileState, f *ast.Field, prefix string, i int) []string {
	if len(f.Names) == 0 {
		name := fmt.Sprintf("%s%d", prefix, i)
		if prefix == "_graft_recv" {
			name = prefix
		}
		o := fs.off(f.Type.Pos())
		fs.add(edit{off: o, end: o, text: name + " ", class: 2, span: 1 << 29})
		return []string{name}
	}
	var out []string
	for j, n := range f.Names {
		if n.Name == "_" {
			name := fmt.Sprintf("%s%d_%d", prefix, i, j)
			if prefix == "_graft_recv" {
				name = prefix
			}
			o := fs.off(n.Pos())
			fs.add(edit{off: o, end: o + 1, text: name, class: 1})
			out = append(out, name)
			continue
		}
		out = append(out, n.Name)
	}
	return out
}

// typeString spells the replacement type with package-qualified names.
func (r *rewriter) typeString(fd *ast.FuncDecl) string {
	obj, ok := r.in.Info.Defs[fd.Name].(*types.Func)
	if !ok {
		return ""
	}
	sig := obj.Type().(*types.Signature)
	var params []*types.Var
	if recv := sig.Recv(); recv != nil {
		params = append(params, recv)
	}
	for i := 0; i < sig.Params().Len(); i++ {
		params = append(params, sig.Params().At(i))
	}
	var res []*types.Var
	for i := 0; i < sig.Results().Len(); i++ {
		res = append(res, sig.Results().At(i))
	}
	flat := types.NewSignatureType(nil, nil, nil, types.NewTuple(params...), types.NewTuple(res...), sig.Variadic())
	return types.TypeString(flat, nil)
}

// hidden returns the type of a parameter declared with type expression t,
// as a value type ("[]T" for "...T"), when it may hold a pointer; "" when
// it holds none (no need to hide it from escape analysis).
func (r *rewriter) hidden(fs *fileState, t ast.Expr) string {
	text := fs.text(t)
	tt := r.in.Info.TypeOf(t)
	if e, ok := t.(*ast.Ellipsis); ok {
		text = "[]" + fs.text(e.Elt)
		if et := r.in.Info.TypeOf(e.Elt); et != nil {
			tt = types.NewSlice(et)
		}
	}
	if tt != nil && PointerFree(tt) {
		return ""
	}
	return text
}

// leaked returns hide, the type the slow path hides f's j-th name as, or
// "" when the plain build leaks that parameter to the heap anyway
// (Config.Leaking).
func (r *rewriter) leaked(fs *fileState, f *ast.Field, j int, hide string) string {
	if hide == "" || j >= len(f.Names) {
		return hide
	}
	p := fs.tf.Position(f.Names[j].Pos())
	if r.cfg.Leaking[fmt.Sprintf("%s:%d:%d", filepath.Base(p.Filename), p.Line, p.Column)] {
		return ""
	}
	return hide
}

// PointerFree reports whether values of t contain no pointers. Parameters
// whose types are not pointer-free reach a patch point's replacement
// through rt.NoEscape; graft patch's escape check asks the same question of
// the same parameters.
func PointerFree(t types.Type) bool {
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return u.Info()&(types.IsString|types.IsUntyped) == 0 && u.Kind() != types.UnsafePointer
	case *types.Array:
		return PointerFree(u.Elem())
	case *types.Struct:
		for i := 0; i < u.NumFields(); i++ {
			if !PointerFree(u.Field(i).Type()) {
				return false
			}
		}
		return true
	}
	return false
}

func genericRecv(fd *ast.FuncDecl) bool {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return false
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if p, ok := t.(*ast.ParenExpr); ok {
		t = p.X
	}
	switch t.(type) {
	case *ast.IndexExpr, *ast.IndexListExpr:
		return true
	}
	return false
}

// leafSize counts body's nodes and reports whether it calls nothing but
// builtins and conversions and holds no closures, defers or go statements.
func (r *rewriter) leafSize(body *ast.BlockStmt) (int, bool) {
	n, leaf := 0, true
	ast.Inspect(body, func(x ast.Node) bool {
		if x == nil {
			return false
		}
		n++
		switch x := x.(type) {
		case *ast.FuncLit, *ast.DeferStmt, *ast.GoStmt, *ast.SelectStmt:
			leaf = false
		case *ast.CallExpr:
			if tv, ok := r.in.Info.Types[x.Fun]; ok && tv.IsType() {
				break
			}
			if id, ok := unparen(x.Fun).(*ast.Ident); ok {
				if _, ok := r.in.Info.Uses[id].(*types.Builtin); ok && id.Name != "panic" && id.Name != "recover" {
					break
				}
			}
			leaf = false
		}
		return true
	})
	return n, leaf
}

// frameless reports whether body calls nothing but len, cap, min, max,
// conversions to concrete types and same-package functions the compiler
// inlines (Config.Inlinable), and has no closures, defers, go statements or
// selects: the gc compiler then usually gives the function no stack check
// (a leaf), and the call in a prologue's slow path would add one, plus a
// frame, to every call.
func (r *rewriter) frameless(body *ast.BlockStmt) bool {
	leaf := true
	ast.Inspect(body, func(x ast.Node) bool {
		if !leaf || x == nil {
			return false
		}
		switch x := x.(type) {
		case *ast.FuncLit, *ast.DeferStmt, *ast.GoStmt, *ast.SelectStmt:
			leaf = false
		case *ast.CallExpr:
			if tv, ok := r.in.Info.Types[x.Fun]; ok && tv.IsType() {
				if types.IsInterface(tv.Type) {
					leaf = false
				}
				break
			}
			var obj types.Object
			switch f := unparen(x.Fun).(type) {
			case *ast.Ident:
				obj = r.in.Info.Uses[f]
			case *ast.SelectorExpr:
				if sel, ok := r.in.Info.Selections[f]; ok {
					if sel.Kind() != types.MethodVal {
						leaf = false
						break
					}
					obj = sel.Obj()
				} else {
					obj = r.in.Info.Uses[f.Sel]
				}
			}
			switch o := obj.(type) {
			case *types.Builtin:
				switch o.Name() {
				case "len", "cap", "min", "max":
				default:
					leaf = false
				}
			case *types.Func:
				if o.Pkg() == nil || o.Pkg().Path() != r.in.PkgPath || !r.cfg.Inlinable[funcName(o)] {
					leaf = false
				}
			default:
				leaf = false
			}
		}
		return leaf
	})
	return leaf
}

// funcName names a function or method as the compiler's -m output does:
// "F", "T.M" or "(*T).M".
func funcName(f *types.Func) string {
	sig, ok := f.Type().(*types.Signature)
	if !ok || sig.Recv() == nil {
		return f.Name()
	}
	t := sig.Recv().Type()
	star := ""
	if p, ok := t.(*types.Pointer); ok {
		star, t = "*", p.Elem()
	}
	n, ok := t.(*types.Named)
	if !ok {
		return f.Name()
	}
	if star != "" {
		return "(*" + n.Obj().Name() + ")." + f.Name()
	}
	return n.Obj().Name() + "." + f.Name()
}

func unparen(e ast.Expr) ast.Expr {
	for {
		p, ok := e.(*ast.ParenExpr)
		if !ok {
			return e
		}
		e = p.X
	}
}
