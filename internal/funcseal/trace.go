package funcseal

import (
	"strings"
)

// ParseTrace finds the first Go panic ("panic: ..." or "fatal error: ...")
// in stderr and returns its message and the function names of the
// panicking goroutine's frames, innermost first, from below its last
// panic(...) frame (frames above it are deferred handlers that re-panicked),
// with runtime frames and arguments removed and import paths unescaped
// ("%2e" → ".").
func ParseTrace(stderr []byte) (reason string, frames []string) {
	text := string(stderr)
	start := -1
	for _, marker := range []string{"\npanic: ", "\nfatal error: "} {
		if strings.HasPrefix(text, marker[1:]) {
			start = 0
			break
		}
		if i := strings.Index(text, marker); i >= 0 && (start < 0 || i+1 < start) {
			start = i + 1
		}
	}
	if start < 0 {
		return "", nil
	}
	lines := strings.Split(text[start:], "\n")
	reason = strings.TrimSpace(lines[0])
	i := 1
	// Continuation lines of the message (and "[recovered]" chains) until
	// the first goroutine header.
	for i < len(lines) && !strings.HasPrefix(lines[i], "goroutine ") {
		i++
	}
	if i >= len(lines) {
		return reason, nil
	}
	for i++; i < len(lines); i++ {
		l := lines[i]
		if l == "" || strings.HasPrefix(l, "goroutine ") {
			break
		}
		if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "created by ") {
			continue
		}
		fn := l
		if p := strings.LastIndexByte(fn, '('); p > 0 {
			fn = fn[:p]
		}
		fn = strings.ReplaceAll(fn, "%2e", ".")
		if fn == "panic" {
			// Frames above a panic frame are deferred calls running
			// during the panic (a recover-and-repanic handler); the
			// panic happened below the last one.
			frames = frames[:0]
			continue
		}
		if strings.HasPrefix(fn, "runtime.") {
			continue
		}
		frames = append(frames, fn)
	}
	return reason, frames
}
