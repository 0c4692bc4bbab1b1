package live

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// deadliner is what TCP and unix listeners offer to interrupt Accept
// without closing the shared socket.
type deadliner interface{ SetDeadline(time.Time) error }

// gatedListener accepts only while its generation serves. Parking does not
// close the socket (the supervisor and the other generations share it):
// it interrupts Accept with a past deadline and stops calling it, so the
// kernel queue goes to whoever accepts.
type gatedListener struct {
	net.Listener
	g         *Gen
	dl        deadliner
	closeOnce sync.Once
	closed    chan struct{}
}

func (g *Gen) gateListener(ln net.Listener) *gatedListener {
	if gl, ok := ln.(*gatedListener); ok && gl.g == g {
		return gl
	}
	l := &gatedListener{Listener: ln, g: g, closed: make(chan struct{})}
	l.dl, _ = ln.(deadliner)
	g.mu.Lock()
	g.lns = append(g.lns, l)
	if !g.accepting {
		l.interrupt()
	}
	g.mu.Unlock()
	return l
}

// errDrained ends Serve loops; it wraps net.ErrClosed.
var errDrained = fmt.Errorf("live: generation draining: %w", net.ErrClosed)

// Accept waits until the generation serves, then accepts one connection.
func (l *gatedListener) Accept() (net.Conn, error) {
	g := l.g
	for {
		g.mu.Lock()
		for !g.accepting && !g.draining {
			ch := g.acceptCh
			g.mu.Unlock()
			select {
			case <-ch:
			case <-l.closed:
				return nil, net.ErrClosed
			}
			g.mu.Lock()
		}
		if g.draining {
			g.mu.Unlock()
			return nil, errDrained
		}
		// Cleared under g.mu, which stopAcceptingLocked also holds when it
		// sets the past deadline, so a park cannot slip in between.
		if l.dl != nil {
			l.dl.SetDeadline(time.Time{})
		}
		g.mu.Unlock()
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // interrupted by park or drain
			}
			return nil, err
		}
		return c, nil
	}
}

// interrupt wakes a blocked Accept; called with g.mu held.
func (l *gatedListener) interrupt() {
	if l.dl != nil {
		l.dl.SetDeadline(time.Unix(1, 0))
	}
}

// Close closes this process's handle of the socket; under a supervisor the
// socket itself stays open in the supervisor.
func (l *gatedListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
