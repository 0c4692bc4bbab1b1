// Package listener holds graft's public listening sockets and the systemd
// socket-activation protocol, both ways: parsing --listen specs, binding
// TCP and unix sockets, adopting the sockets graft itself was handed
// (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES), and handing them on to a
// socket-mode generation (descriptors from 3, LISTEN_FDS, LISTEN_FDNAMES,
// and LISTEN_PID set by an exec shim, see MaybeShim). It is apart from the
// supervisor because none of it depends on generations: a listener outlives
// every generation it serves.
package listener

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spec is one public socket: --listen NAME=ADDR.
type Spec struct {
	Name string
	Addr string // "host:port" or "unix:/path"
}

// Parse parses NAME=ADDR.
func Parse(s string) (Spec, error) {
	name, addr, ok := strings.Cut(s, "=")
	if !ok || name == "" || addr == "" {
		return Spec{}, fmt.Errorf("parse listen %q: want NAME=ADDR", s)
	}
	if strings.ContainsAny(name, ":= \t\n") {
		return Spec{}, fmt.Errorf("parse listen %q: name may not hold ':', '=' or spaces", s)
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return Spec{}, fmt.Errorf("parse listen %q: empty unix path", s)
		}
		return Spec{Name: name, Addr: addr}, nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil {
		return Spec{}, fmt.Errorf("parse listen %q: %w", s, err)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return Spec{}, fmt.Errorf("parse listen %q: bad port %q", s, port)
	}
	return Spec{Name: name, Addr: addr}, nil
}

// Inherited is a socket graft itself received by socket activation.
type Inherited struct {
	Name string
	File *os.File
}

// InheritedSockets reads graft's own systemd socket-activation environment
// (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) and returns the sockets by name.
// It returns nothing when the variables are absent or meant for another
// process.
func InheritedSockets(getenv func(string) string, pid int) []Inherited {
	if getenv("LISTEN_PID") != strconv.Itoa(pid) {
		return nil
	}
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil
	}
	names := strings.Split(getenv("LISTEN_FDNAMES"), ":")
	var out []Inherited
	for i := range n {
		fd := 3 + i
		syscall.CloseOnExec(fd)
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		out = append(out, Inherited{Name: name, File: os.NewFile(uintptr(fd), name)})
	}
	return out
}

// Listener is one public socket and the descriptor handed to generations.
type Listener struct {
	spec    Spec
	ln      net.Listener // proxy mode; nil in socket mode
	address string
	unlink  string // socket mode: unix socket path to remove at close
	fd      int    // ln's descriptor, passed to every socket-mode generation
}

// Open binds or adopts the listeners, in specs order. raw (socket mode)
// keeps only a duplicate descriptor of each and closes the net.Listener:
// graft never accepts in socket mode, and a socket in its netpoller would
// wake it at every connection meant for a generation. Inherited sockets
// not named by a spec are closed.
func Open(specs []Spec, inherited []Inherited, raw bool) ([]*Listener, error) {
	byName := map[string]*os.File{}
	inheritedNames := map[string]bool{}
	for _, in := range inherited {
		byName[in.Name] = in.File
		inheritedNames[in.Name] = true
	}
	var out []*Listener
	fail := func(err error) ([]*Listener, error) {
		for _, l := range out {
			l.Close()
		}
		return nil, err
	}
	for _, sp := range specs {
		var (
			ln  net.Listener
			err error
		)
		if f, ok := byName[sp.Name]; ok {
			ln, err = net.FileListener(f)
			f.Close()
			if err != nil {
				return fail(fmt.Errorf("adopt inherited socket %s: %w", sp.Name, err))
			}
		} else {
			ln, err = listen(sp.Addr)
			if err != nil {
				if len(inherited) > 0 {
					var names []string
					for _, in := range inherited {
						names = append(names, in.Name)
					}
					err = fmt.Errorf("%w (inherited sockets are named %s: match them with --listen NAME=, e.g. FileDescriptorName= in the .socket unit)", err, strings.Join(names, ", "))
				}
				return fail(fmt.Errorf("listen %s=%s: %w", sp.Name, sp.Addr, err))
			}
		}
		delete(byName, sp.Name)
		l := &Listener{spec: sp, ln: ln, fd: -1}
		// The listener's own fd is handed to children (ForkExec dup2s it).
		// No *os.File is made of it: os.File.Fd would switch the shared
		// socket to blocking mode, and a Go child blocked in accept(2)
		// on it then cannot stop accepting when asked to.
		if sc, ok := ln.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				rc.Control(func(fd uintptr) { l.fd = int(fd) })
			}
		}
		if l.fd < 0 {
			ln.Close()
			return fail(fmt.Errorf("listener %s: no file descriptor", sp.Name))
		}
		if a := ln.Addr(); a.Network() == "unix" {
			l.address = "unix:" + a.String()
		} else {
			l.address = a.String()
		}
		ul, isUnix := ln.(*net.UnixListener)
		if isUnix {
			// graft owns the path; generations only ever get the fd.
			ul.SetUnlinkOnClose(true)
		}
		if raw {
			fd, err := dupCloexec(l.fd)
			if err != nil {
				ln.Close()
				return fail(fmt.Errorf("listener %s: dup: %w", sp.Name, err))
			}
			if isUnix {
				ul.SetUnlinkOnClose(false)
				if _, adopted := inheritedNames[sp.Name]; !adopted {
					l.unlink = strings.TrimPrefix(l.address, "unix:")
				}
			}
			ln.Close()
			l.ln, l.fd = nil, fd
		}
		out = append(out, l)
	}
	for _, f := range byName {
		f.Close() // inherited but not asked for
	}
	return out, nil
}

func listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if err := RemoveStale(path); err != nil {
		return nil, err
	}
	return net.Listen("unix", path)
}

// RemoveStale removes a unix socket file nothing answers on; it refuses to
// touch one that answers (ErrInUse) or a file that is not a socket.
func RemoveStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: %w", path, ErrInUse)
	}
	return os.Remove(path)
}

// ErrInUse is returned when another process answers on a socket graft was
// asked to create.
var ErrInUse = errors.New("another process answers on this socket")

// Name is the listener's --listen name.
func (l *Listener) Name() string { return l.spec.Name }

// Addr is the bound address: "host:port" or "unix:/path".
func (l *Listener) Addr() string { return l.address }

// Net is the listener to accept from (proxy mode); nil when Open was raw.
func (l *Listener) Net() net.Listener { return l.ln }

// Close closes the socket and, in raw mode, removes the unix socket file
// graft created.
func (l *Listener) Close() {
	if l.ln != nil {
		l.ln.Close()
		return
	}
	syscall.Close(l.fd)
	if l.unlink != "" {
		os.Remove(l.unlink)
	}
}

// Activation is what a socket-mode child gets: the listeners' descriptors,
// to become its fds 3, 4, ... in order, and the LISTEN_FDS and
// LISTEN_FDNAMES variables that describe them. LISTEN_PID, which must be
// the child's own pid, is set by the exec shim (ShimArgv).
func Activation(ls []*Listener) (fds []uintptr, env []string) {
	var names []string
	for _, l := range ls {
		fds = append(fds, uintptr(l.fd))
		names = append(names, l.spec.Name)
	}
	return fds, []string{"LISTEN_FDS=" + strconv.Itoa(len(fds)), "LISTEN_FDNAMES=" + strings.Join(names, ":")}
}

func dupCloexec(fd int) (int, error) {
	nfd, err := syscall.Dup(fd)
	if err != nil {
		return -1, err
	}
	syscall.CloseOnExec(nfd)
	return nfd, nil
}
