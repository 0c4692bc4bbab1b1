package rt

import (
	"bytes"
	"fmt"
	"runtime/pprof"
	"strings"
	"time"
)

// InstallOptions tune InstallSafe.
type InstallOptions struct {
	// Wait bounds the wait for a safe point (0: one second).
	Wait time.Duration
	// PerCall skips the stack check: the patch declares that old and new
	// bodies may run side by side (calls already running finish the old
	// body, new calls take the new one).
	PerCall bool
}

// InstallSafe waits until none of fns' functions is on any goroutine's
// stack (checked with the goroutine profile, every millisecond, up to
// opt.Wait), then installs them with Install. It returns how long the wait
// took. A wait that times out installs nothing and names a busy function.
func InstallSafe(id string, fns map[string]any, opt InstallOptions) (*Patch, time.Duration, error) {
	if opt.Wait <= 0 {
		opt.Wait = time.Second
	}
	start := time.Now()
	if !opt.PerCall {
		for {
			busy := onStack(fns)
			if busy == "" {
				break
			}
			if time.Since(start) > opt.Wait {
				return nil, time.Since(start), fmt.Errorf("install %s: no safe point within %v: %s is on a goroutine's stack", id, opt.Wait, busy)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waited := time.Since(start)
	pt, err := Install(id, fns)
	return pt, waited, err
}

// onStack returns an id of fns whose function is on some goroutine's stack.
func onStack(fns map[string]any) string {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		return "(goroutine profile failed)"
	}
	prof := buf.String()
	for id := range fns {
		// Frames read "#\t0x...\tpkg.F+0x1f\tfile:line"; the linker escapes
		// dots in an import path's last element as %2e.
		if strings.Contains(prof, "\t"+id+"+") || strings.Contains(prof, "\t"+escapeDots(id)+"+") {
			return id
		}
	}
	return ""
}

// escapeDots escapes the dots of the last import path element of a
// function id the way symbol names do: "gopkg.in/yaml.v3.F" →
// "gopkg.in/yaml%2ev3.F".
func escapeDots(id string) string {
	slash := strings.LastIndexByte(id, '/')
	if slash < 0 {
		return id
	}
	rest := id[slash+1:]
	// The package name ends at the first dot followed by an identifier of
	// the function: for "yaml.v3.(*T).M" it is ambiguous; escape all dots
	// before the last dot that precedes "(" or a letter-only suffix.
	end := strings.Index(rest, ".(")
	if end < 0 {
		end = strings.LastIndexByte(rest, '.')
	}
	if end <= 0 {
		return id
	}
	return id[:slash+1] + strings.ReplaceAll(rest[:end], ".", "%2e") + rest[end:]
}

var buildID string

// SetBuildID records the id of the graft build this program is (generated
// code in the main package calls it); the admin list answer carries it.
func SetBuildID(id string) {
	mu.Lock()
	defer mu.Unlock()
	buildID = id
}

// BuildID returns the id SetBuildID recorded ("" for builds without one,
// such as test binaries).
func BuildID() string {
	mu.Lock()
	defer mu.Unlock()
	return buildID
}
