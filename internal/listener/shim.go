package listener

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

// ShimArgv is the command line that starts the program at path, with argv
// (argv[0] included), through the exec shim, so that its LISTEN_PID is its
// own pid: this binary again when it called MaybeShim, else /bin/sh
// (ShellShimArgv). Its first element is the program to execute.
func ShimArgv(path string, argv []string) []string {
	if shimReady {
		if exe, err := os.Executable(); err == nil {
			return append([]string{exe, shimArg, path}, argv...)
		}
	}
	return ShellShimArgv(path, argv)
}

// ShellShimArgv is ShimArgv through /bin/sh, for a binary that does not
// call MaybeShim: $$ is the shell's pid, which exec keeps (argv[0] is lost).
func ShellShimArgv(path string, argv []string) []string {
	sh := []string{"/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; p="$1"; shift 2; exec "$p" "$@"`, "graft-shim", path}
	return append(sh, argv...)
}
