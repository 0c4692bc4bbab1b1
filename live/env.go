package live

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Environment variables of the generation protocol (see api/control.go).
const (
	envListenFDs     = "LISTEN_FDS"
	envListenPID     = "LISTEN_PID"
	envListenFDNames = "LISTEN_FDNAMES"
	envNotifySocket  = "NOTIFY_SOCKET"
	envControlFD     = "GRAFT_CONTROL_FD"
	envStateFD       = "GRAFT_STATE_FD"
	envGeneration    = "GRAFT_GENERATION"
)

// listenFDsStart is the first inherited listener's fd (sd_listen_fds).
const listenFDsStart = 3

// osEnv is the process environment and identity, behind function fields so
// tests can hand a Gen an environment without touching the real one.
type osEnv struct {
	getenv   func(string) string
	unsetenv func(string) error
	getpid   func() int
}

func realEnv() osEnv {
	return osEnv{getenv: os.Getenv, unsetenv: os.Unsetenv, getpid: os.Getpid}
}

// inheritedFD is one socket passed with the socket-activation protocol.
type inheritedFD struct {
	name string
	fd   int
}

// parseListenFDs reads the socket-activation variables. It returns nothing
// when they are absent or meant for another process (LISTEN_PID differs),
// and an error when they are malformed.
func parseListenFDs(getenv func(string) string, pid int) ([]inheritedFD, error) {
	nstr := getenv(envListenFDs)
	if nstr == "" {
		return nil, nil
	}
	pidStr := getenv(envListenPID)
	if pidStr != "" {
		p, err := strconv.Atoi(pidStr)
		if err != nil {
			return nil, fmt.Errorf("parse %s %q: %w", envListenPID, pidStr, err)
		}
		if p != pid {
			return nil, nil
		}
	}
	n, err := strconv.Atoi(nstr)
	if err != nil || n < 0 || n > 1<<16 {
		return nil, fmt.Errorf("parse %s %q: not a count", envListenFDs, nstr)
	}
	var names []string
	if s := getenv(envListenFDNames); s != "" {
		names = strings.Split(s, ":")
	}
	fds := make([]inheritedFD, n)
	for i := range n {
		name := "unknown" // systemd's name for an unnamed socket
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		fds[i] = inheritedFD{name: name, fd: listenFDsStart + i}
	}
	return fds, nil
}

// parseFD reads a file-descriptor variable; "" means absent.
func parseFD(name, s string) (int, error) {
	if s == "" {
		return -1, nil
	}
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 0 {
		return -1, fmt.Errorf("parse %s %q: not a file descriptor", name, s)
	}
	return fd, nil
}

// splitAddr turns "unix:/path" into ("unix", "/path") and anything else
// into ("tcp", addr).
func splitAddr(addr string) (network, address string) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix", p
	}
	return "tcp", addr
}

// notify sends one sd_notify datagram ("READY=1") to socket path, which may
// name an abstract socket with a leading '@'.
func notify(path, state string) error {
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify %q: %w", state, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify %q: %w", state, err)
	}
	return nil
}

// fileListener makes a net.Listener from an inherited fd and closes the
// original (net.FileListener works on a dup), so the fd is claimed exactly
// once.
func fileListener(fd int, name string) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		return nil, fmt.Errorf("listener %q: fd %d is not open", name, fd)
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listener %q from fd %d: %w", name, fd, err)
	}
	return ln, nil
}

// closeOnExec keeps inherited fds out of the children this process starts.
func closeOnExec(fd int) { syscall.CloseOnExec(fd) }

// errNoControl is returned by steps that need a supervisor's control channel.
var errNoControl = errors.New("no control channel (not started by a graft supervisor)")
