package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// shimArg is the hidden first argument that makes graft (or a test binary)
// act as the exec shim of a socket-mode generation.
const shimArg = "__graft-exec-shim"

// shimReady records that this binary handles shimArg, so the supervisor may
// re-execute itself as the shim instead of going through /bin/sh.
var shimReady bool

// MaybeShim must be called at the very start of main (and of TestMain) of
// every binary that runs a Supervisor. When the process was started as the
// exec shim it sets LISTEN_PID to its own pid and replaces itself with the
// real command (execve keeps the pid, so LISTEN_PID matches the child, which
// Go's os/exec cannot arrange before fork); it never returns then.
// Otherwise it returns at once.
func MaybeShim() {
	shimReady = true
	if len(os.Args) < 3 || os.Args[1] != shimArg {
		return
	}
	path, argv := os.Args[2], os.Args[3:]
	env := append(os.Environ(), "LISTEN_PID="+strconv.Itoa(os.Getpid()))
	err := syscall.Exec(path, argv, env)
	fmt.Fprintf(os.Stderr, "graft shim: exec %s: %v\n", path, err)
	os.Exit(127)
}

// shimPrefix is the argv that starts a command through the shim: the
// command's resolved path follows, then its argv (argv[0] included).
func shimPrefix() []string {
	if shimReady {
		if exe, err := os.Executable(); err == nil {
			return []string{exe, shimArg}
		}
	}
	// Without a shim-aware binary, sh does the same job: $$ is the shell's
	// pid, which exec keeps (argv[0] is lost).
	return []string{"/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; p="$1"; shift 2; exec "$p" "$@"`, "graft-shim"}
}
