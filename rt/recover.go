package rt

import (
	"runtime"
	"strings"
)

// Recover sites (index, slice, div, assert) insert no code: the failure is
// the runtime's own panic. While checks are armed, rt.Recover — deferred by
// instrumented functions with an error result — finds the frame that
// panicked and, when a switched-on site of the matching kind sits on that
// file:line, turns the panic into an *Error returned as the function's
// error.

// lineKey is a file's base name and a line: frames carry the compile-time
// file name, which -trimpath makes module-relative, while the manifest
// holds absolute names.
type lineKey struct {
	base string
	line int
}

func keyOf(file string, line int) lineKey {
	if i := strings.LastIndexByte(file, '/'); i >= 0 {
		file = file[i+1:]
	}
	return lineKey{file, line}
}

// panicKind maps a runtime panic value to the site kinds it can come from.
func panicKind(r any) (kinds [2]string, ok bool) {
	if _, ok := r.(*runtime.TypeAssertionError); ok {
		return [2]string{KindAssert}, true
	}
	re, ok := r.(runtime.Error)
	if !ok {
		return kinds, false
	}
	msg := re.Error()
	switch {
	case strings.Contains(msg, "nil pointer dereference"), strings.Contains(msg, "assignment to entry in nil map"):
		return [2]string{KindNil}, true
	case strings.Contains(msg, "index out of range"):
		return [2]string{KindIndex}, true
	case strings.Contains(msg, "slice bounds out of range"):
		return [2]string{KindSlice, KindIndex}, true
	case strings.Contains(msg, "integer divide by zero"):
		return [2]string{KindDiv}, true
	}
	return kinds, false
}

// siteError returns the *Error for runtime panic r when a switched-on
// recover site is where it happened; nil otherwise. It runs inside the
// deferred Recover, so the panicking frames are still on the stack.
func siteError(r any) *Error {
	kinds, ok := panicKind(r)
	if !ok {
		return nil
	}
	var pcs [64]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	seenPanic := false
	for {
		f, more := frames.Next()
		if !seenPanic {
			seenPanic = f.Function == "runtime.gopanic"
		} else if !strings.HasPrefix(f.Function, "runtime.") {
			if kinds[0] == KindNil {
				return matchFunc(f.Function, r)
			}
			return matchSite(f.File, f.Line, kinds, r)
		}
		if !more {
			return nil
		}
	}
}

func matchSite(file string, line int, kinds [2]string, r any) *Error {
	mu.Lock()
	cands := byLine[keyOf(file, line)]
	mu.Unlock()
	for _, s := range cands {
		if !s.isOn() {
			continue
		}
		if s.info.Kind == kinds[0] || s.info.Kind == kinds[1] {
			siteStops.Add(1)
			return &Error{Kind: s.info.Kind, ID: s.info.ID, Detail: panicText(r)}
		}
	}
	return nil
}

func panicText(r any) string {
	if e, ok := r.(error); ok {
		return e.Error()
	}
	return "panic"
}

// matchFunc finds a switched-on nil site of the function fn (a runtime
// function name; closures count as their enclosing function).
func matchFunc(fn string, r any) *Error {
	fn = strings.ReplaceAll(fn, "%2e", ".")
	for ; fn != ""; fn = enclosingFunc(fn) {
		mu.Lock()
		cands := byFunc[fn]
		mu.Unlock()
		for _, s := range cands {
			if s.isOn() {
				siteStops.Add(1)
				return &Error{Kind: s.info.Kind, ID: s.info.ID, Detail: panicText(r)}
			}
		}
	}
	return nil
}

// enclosingFunc strips one closure suffix ("p.F.func1" → "p.F"), "" when
// there is none.
func enclosingFunc(fn string) string {
	i := strings.LastIndexByte(fn, '.')
	if i < 0 {
		return ""
	}
	last := fn[i+1:]
	if strings.HasPrefix(last, "func") || strings.HasPrefix(last, "gowrap") || (last != "" && strings.Trim(last, "0123456789") == "") {
		return fn[:i]
	}
	return ""
}
