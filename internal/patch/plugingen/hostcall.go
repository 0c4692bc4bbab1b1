package plugingen

import (
	"fmt"
	"go/types"
	"maps"
	"strings"
)

// Calls from the plugin to the running program's unexported functions go
// through the build's exports (var GraftF_f = f): an indirect call, about
// which the plugin's compiler knows nothing, so every pointer argument
// escapes. A plugin body that passes &local (a parser building a token
// on its stack and handing it to an unchanged helper) then allocates on
// every call where the original did not. When the compiler's escape
// facts for the running program's function say a pointer parameter is
// not kept, or only what it points to is, the plugin calls through a
// wrapper of the same signature that passes that argument through
// rt.NoEscape, so the caller's object may stay on its stack; for a
// parameter whose content is kept, the wrapper also states that content
// leak (an assignment to a package sink behind a condition that is never
// true: escape analysis does not look at the condition), so what the
// object points to is still heap-allocated as the original requires.

// Escape is what the running program's function keeps of one parameter.
type Escape int

const (
	// EscapeUnknown: kept, or no fact; the argument is passed as is.
	EscapeUnknown Escape = iota
	// EscapeNone: the compiler says the parameter does not escape.
	EscapeNone
	// EscapeContent: only what the parameter points to is kept
	// ("leaking param content").
	EscapeContent
)

// Options are Generate's optional inputs.
type Options struct {
	// Escapes returns, for a function id of the running program (the old
	// tree), what it keeps of each parameter, the receiver first; ok is
	// false when the facts are not known for every parameter.
	Escapes func(id string) (facts []Escape, ok bool)
}

// hostCall returns what plugin code calls for the running program's
// function obj, reached through the build's export fn: a wrapper that
// hides the pointer arguments obj does not keep, or fn itself.
func (g *gen) hostCall(obj *types.Func, fn, where string) string {
	if g.opts.Escapes == nil {
		return fn
	}
	id := FuncID(obj)
	if name, ok := g.hostDone[id]; ok {
		return name
	}
	g.hostDone[id] = fn
	sig := obj.Type().(*types.Signature)
	if sig.Variadic() {
		return fn
	}
	var params []*types.Var
	if r := sig.Recv(); r != nil {
		params = append(params, r)
	}
	for i := range sig.Params().Len() {
		params = append(params, sig.Params().At(i))
	}
	facts, ok := g.opts.Escapes(id)
	if !ok || len(facts) != len(params) {
		return fn
	}
	// Naming the parameters' types may fail (a type of package main) or
	// import packages: a wrapper that is not written must leave neither.
	failed, imports, names := len(g.unsupported), maps.Clone(g.imports), maps.Clone(g.names)
	undo := func() string {
		g.unsupported, g.imports, g.names = g.unsupported[:failed], imports, names
		return fn
	}
	var (
		decl, args, sinks []string
		hidden            bool
	)
	for i, p := range params {
		a := fmt.Sprintf("a%d", i)
		t := g.typeExpr(p.Type(), where)
		decl = append(decl, a+" "+t)
		if _, ptr := types.Unalias(p.Type()).(*types.Pointer); !ptr || facts[i] == EscapeUnknown {
			args = append(args, a)
			continue
		}
		hidden = true
		args = append(args, fmt.Sprintf("(%s)(%s.NoEscape(%[2]s.Pointer(%s)))", t, g.rtName(), a))
		if facts[i] == EscapeContent {
			sinks = append(sinks, fmt.Sprintf("_graft_sink = *%s", a))
		}
	}
	var res []string
	for i := range sig.Results().Len() {
		res = append(res, g.typeExpr(sig.Results().At(i).Type(), where))
	}
	if !hidden || len(g.unsupported) > failed {
		return undo()
	}
	k := g.pkgIndex[obj.Pkg().Path()]
	name := fmt.Sprintf("p%d_host_%s", k, strings.NewReplacer("(*", "", ")", "", ".", "_").Replace(strings.TrimPrefix(id, obj.Pkg().Path()+".")))
	g.hostDone[id] = name
	var b strings.Builder
	fmt.Fprintf(&b, "// %s calls the running program's %s, hiding from escape\n// analysis the pointers it does not keep.\nfunc %s(%s)", name, id, name, strings.Join(decl, ", "))
	switch len(res) {
	case 0:
	case 1:
		b.WriteString(" " + res[0])
	default:
		b.WriteString(" (" + strings.Join(res, ", ") + ")")
	}
	b.WriteString(" {\n")
	if len(sinks) > 0 {
		g.needSink = true
		fmt.Fprintf(&b, "\tif _graft_never {\n\t\t%s\n\t}\n", strings.Join(sinks, "\n\t\t"))
	}
	b.WriteString("\t")
	if len(res) > 0 {
		b.WriteString("return ")
	}
	fmt.Fprintf(&b, "%s(%s)\n}", fn, strings.Join(args, ", "))
	g.out = append(g.out, b.String())
	return name
}

// rtName imports rt under the name sym's init lines use.
func (g *gen) rtName() string {
	if _, ok := g.imports[RTImport]; !ok {
		g.imports[RTImport], g.names["_graft_rt"] = "_graft_rt", RTImport
	}
	return g.imports[RTImport]
}

// sinkDecls declares the sink of the content leaks wrappers state.
const sinkDecls = `// _graft_never is never true, and _graft_sink never written: the
// assignments to it tell escape analysis what a wrapped function keeps.
var (
	_graft_never bool
	_graft_sink  interface{}
)`
