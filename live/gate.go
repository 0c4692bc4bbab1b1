package live

import (
	"context"
	"errors"
	"sync"
)

// ErrMoved is returned by Update when the state now belongs to another
// generation: the work must be done there (Mutating forwards HTTP requests
// through the shared listener) rather than here, where it would be lost.
var ErrMoved = errors.New("state moved to another generation")

// gateMode says whether mutations may run here.
type gateMode int

const (
	gateOpen  gateMode = iota // mutations run
	gateHeld                  // a handoff is in progress or awaits its outcome: mutations wait
	gateMoved                 // the state belongs to another generation: mutations go there
)

// gate serializes mutations against handoffs: any number of mutations run
// at once, a handoff waits for them to finish and holds new ones.
type gate struct {
	mu      sync.Mutex
	mode    gateMode
	active  int
	changed chan struct{} // closed and replaced whenever mode changes
	idle    chan struct{} // closed when active drops to zero while held
	onWait  func()        // tests: called when a mutation starts waiting
}

func newGate() *gate { return &gate{changed: make(chan struct{})} }

// enter admits one mutation, waiting while the gate is held. It returns
// ErrMoved when the state is elsewhere, or ctx's error.
func (g *gate) enter(ctx context.Context) error {
	for {
		g.mu.Lock()
		switch g.mode {
		case gateOpen:
			g.active++
			g.mu.Unlock()
			return nil
		case gateMoved:
			g.mu.Unlock()
			return ErrMoved
		}
		ch := g.changed
		g.mu.Unlock()
		if g.onWait != nil {
			g.onWait()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *gate) leave() {
	g.mu.Lock()
	g.active--
	if g.active == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
	g.mu.Unlock()
}

// hold stops new mutations and waits for running ones to finish.
func (g *gate) hold(ctx context.Context) error {
	g.mu.Lock()
	g.setLocked(gateHeld)
	if g.active == 0 {
		g.mu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) set(m gateMode) {
	g.mu.Lock()
	g.setLocked(m)
	g.mu.Unlock()
}

func (g *gate) setLocked(m gateMode) {
	if g.mode == m {
		return
	}
	g.mode = m
	close(g.changed)
	g.changed = make(chan struct{})
}

func (g *gate) get() gateMode {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mode
}
