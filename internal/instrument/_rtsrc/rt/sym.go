package rt

import (
	"fmt"
	"reflect"
	"sort"
)

// The symbol registry: generated code registers every package-level,
// non-generic function of an instrumented package as its func value and
// every package-level variable as a pointer to it, under
// import path + "." + name. Patch plugins reach unexported functions and
// state through it instead of //go:linkname.

var syms = map[string]any{}

// Sym registers v (a func value, or a pointer to a package variable) under
// pkg + "." + name.
func Sym(pkg, name string, v any) {
	mu.Lock()
	defer mu.Unlock()
	id := pkg + "." + name
	if _, dup := syms[id]; !dup {
		syms[id] = v
	}
}

// Symbol returns what is registered under id.
func Symbol(id string) (any, bool) {
	mu.Lock()
	defer mu.Unlock()
	v, ok := syms[id]
	return v, ok
}

// Symbols lists the registered ids, sorted.
func Symbols() []string {
	mu.Lock()
	defer mu.Unlock()
	out := make([]string, 0, len(syms))
	for id := range syms {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Func returns the function registered under id as an F, or an error naming
// both types when it is another type.
func Func[F any](id string) (F, error) {
	var zero F
	v, ok := Symbol(id)
	if !ok {
		return zero, fmt.Errorf("symbol %s: not registered", id)
	}
	f, ok := v.(F)
	if !ok {
		return zero, fmt.Errorf("symbol %s: is %v, not %v", id, reflect.TypeOf(v), reflect.TypeFor[F]())
	}
	return f, nil
}

// Var returns a pointer to the package variable registered under id.
func Var[T any](id string) (*T, error) {
	return Func[*T](id)
}
