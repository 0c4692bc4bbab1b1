package heal

import (
	"bytes"
	"regexp"
	"strings"
)

var digitsRE = regexp.MustCompile(`[0-9]+`)
var hexAddrRE = regexp.MustCompile(`0x[0-9a-fA-F]+`)

// CrashSite extracts where a Go program died from the tail of its stderr:
// the last "panic:" or "fatal error:" message (numbers replaced by N, since
// index values and addresses change from one crash to the next) and the
// first frame of the crashing goroutine outside the runtime, as
// "function file:line". It returns "" when stderr holds no Go trace.
func CrashSite(stderr []byte) string {
	lines := strings.Split(string(stderr), "\n")
	start := -1
	for i := len(lines) - 1; i >= 0; i-- {
		l := stripPrefix(lines[i])
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			start = i
			// A re-panic prints "panic: A [recovered]" then "panic: B";
			// keep walking up to the first of a consecutive block.
			for start > 0 && strings.HasPrefix(stripPrefix(lines[start-1]), "panic: ") {
				start--
			}
			break
		}
	}
	if start < 0 {
		return ""
	}
	msg := stripPrefix(lines[start])
	msg = strings.TrimSuffix(msg, " [recovered]")
	msg = hexAddrRE.ReplaceAllString(msg, "ADDR")
	msg = digitsRE.ReplaceAllString(msg, "N")
	frame := ""
	for i := start + 1; i < len(lines); i++ {
		l := stripPrefix(lines[i])
		if !strings.HasPrefix(l, "goroutine ") {
			continue
		}
		// Frames come in pairs: "pkg.fn(args)" then "\tfile:line +0x..".
		for j := i + 1; j+1 < len(lines); j += 2 {
			fn := stripPrefix(lines[j])
			loc := strings.TrimSpace(stripPrefix(lines[j+1]))
			if fn == "" || strings.HasPrefix(fn, "goroutine ") {
				break
			}
			name := fn
			if k := strings.LastIndexByte(fn, '('); k > 0 {
				name = fn[:k]
			}
			if strings.HasPrefix(name, "runtime.") || strings.HasPrefix(name, "internal/runtime/") || strings.HasPrefix(name, "panic") ||
				strings.HasPrefix(name, "created by ") {
				continue
			}
			if k := strings.Index(loc, " +0x"); k > 0 {
				loc = loc[:k]
			}
			if k := strings.LastIndexByte(loc, '/'); k >= 0 {
				loc = loc[k+1:]
			}
			frame = name + " " + loc
			break
		}
		break
	}
	if frame == "" {
		return msg
	}
	return msg + " at " + frame
}

// stripPrefix removes a "[role] " or "genN: " prefix a supervisor may put
// before captured lines, and a trailing carriage return.
func stripPrefix(l string) string {
	l = strings.TrimRight(l, "\r")
	if strings.HasPrefix(l, "[") {
		if k := strings.Index(l, "] "); k > 0 && k < 32 {
			l = l[k+2:]
		}
	}
	return l
}

// hasGoTrace reports whether stderr holds a Go panic or fatal error.
func hasGoTrace(stderr []byte) bool {
	return bytes.Contains(stderr, []byte("panic: ")) || bytes.Contains(stderr, []byte("fatal error: "))
}
