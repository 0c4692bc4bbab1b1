// Package control is graft's end of a generation's control channel
// (docs/protocol.md): a SOCK_SEQPACKET socket pair, one JSON api.Control
// per packet, a descriptor attached to handoff and receive, and the stream
// pair that carries state. The child says hello (what it can do) and
// answers parked, handoff-sent or error; graft sends park, commit, resume,
// drain, handoff and receive. It is apart from the supervisor because it
// is wire protocol, not policy: which message to send when, and what an
// answer means for the generation, stay the supervisor's.
//
// A nil *Conn is a generation without a control channel: it never said
// hello and never answers.
package control

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/graftdev/graft/api"
)

// Conn is graft's end of one generation's control channel.
type Conn struct {
	c   *net.UnixConn
	wmu sync.Mutex // one message written at a time
	rmu sync.Mutex // held while a message is received and handled

	hello     atomic.Pointer[api.Control]
	greeted   chan struct{} // closed at the first hello
	greetOnce sync.Once
	answers   chan api.Control // parked, handoff-sent, error
}

// Pair makes a control channel: graft's end, and the child's end to pass
// to it at fork (the caller closes it afterwards).
func Pair() (*Conn, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("control socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "graft-control")
	child := os.NewFile(uintptr(fds[1]), "graft-control-child")
	defer parent.Close()
	c, err := net.FileConn(parent)
	if err != nil {
		child.Close()
		return nil, nil, fmt.Errorf("control socketpair: %w", err)
	}
	return &Conn{
		c:       c.(*net.UnixConn),
		greeted: make(chan struct{}),
		answers: make(chan api.Control, 8),
	}, child, nil
}

// StatePair makes the stream that carries a generation's state to another
// (handoff, and receive on rollback).
func StatePair() (r, w *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("state socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "graft-state-r"), os.NewFile(uintptr(fds[1]), "graft-state-w"), nil
}

// Send writes one message, with fd attached when not nil. A child that
// does not read it within 2s fails it.
func (c *Conn) Send(m api.Control, fd *os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if fd != nil {
		oob = syscall.UnixRights(int(fd.Fd()))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, _, err = c.c.WriteMsgUnix(b, oob, nil)
	return err
}

// Hello is the child's hello, nil until it said one.
func (c *Conn) Hello() *api.Control {
	if c == nil {
		return nil
	}
	return c.hello.Load()
}

// Greeted is closed when the child has said hello.
func (c *Conn) Greeted() <-chan struct{} {
	if c == nil {
		return nil
	}
	return c.greeted
}

// Answers delivers the child's parked, handoff-sent and error messages;
// beyond 8 that nobody took, more are dropped.
func (c *Conn) Answers() <-chan api.Control {
	if c == nil {
		return nil
	}
	return c.answers
}

// Receive reads the child's messages until the channel closes. seen is
// called for every message (err: a malformed one), after a hello is
// recorded and before an answer is queued. Its caller owns it and waits
// for it.
func (c *Conn) Receive(seen func(api.Control, error)) {
	rc, err := c.c.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, 256)
	for {
		var done bool
		// Receiving and handling a message happen under rmu, so that
		// Settle can tell "nothing pending" from "read but not yet
		// handled".
		err := rc.Read(func(fd uintptr) bool {
			c.rmu.Lock()
			defer c.rmu.Unlock()
			n, oobn, _, _, err := syscall.Recvmsg(int(fd), buf, oob, syscall.MSG_DONTWAIT)
			if err == syscall.EAGAIN || err == syscall.EINTR {
				return false
			}
			if err != nil || n == 0 {
				done = true
				return true
			}
			if oobn > 0 {
				closeRights(oob[:oobn]) // children never send fds; do not leak them
			}
			c.handle(buf[:n], seen)
			return true
		})
		if err != nil || done {
			return
		}
	}
}

func (c *Conn) handle(b []byte, seen func(api.Control, error)) {
	var m api.Control
	if err := json.Unmarshal(b, &m); err != nil {
		seen(api.Control{}, err)
		return
	}
	switch m.Type {
	case api.CtlHello:
		c.hello.Store(&m)
		c.greetOnce.Do(func() { close(c.greeted) })
		seen(m, nil)
	case api.CtlParked, api.CtlHandoffSent, api.CtlError:
		seen(m, nil)
		select {
		case c.answers <- m:
		default:
		}
	default:
		seen(m, nil)
	}
}

// Settle returns once every message the child sent so far has been
// handled, or its hello is known (at most 1s). Called at readiness: a
// child says hello before READY=1, so after Settle its hello is known if
// it sent one.
func (c *Conn) Settle() {
	if c == nil {
		return
	}
	rc, err := c.c.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && c.hello.Load() == nil {
		var pending bool
		c.rmu.Lock()
		rc.Control(func(fd uintptr) {
			var b [1]byte
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			pending = err == nil && n > 0
		})
		c.rmu.Unlock()
		if !pending {
			return
		}
		time.Sleep(time.Millisecond) // Receive is about to take it
	}
}

// Close closes graft's end, which ends Receive.
func (c *Conn) Close() error { return c.c.Close() }

func closeRights(oob []byte) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
}
