package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/graftdev/graft/api"
)

// Lane is a process outside the main line of generations (proxy mode),
// such as a shadow candidate. Its exit is never a crash of the service.
type Lane struct {
	s *Supervisor
	g *generation
}

// StartLane starts cmd with its own private {port}/{addr}/PORT and waits
// for it to be ready like a generation; its output is captured with role
// as prefix. role: "candidate" or "secondary".
func (s *Supervisor) StartLane(ctx context.Context, role string, cmd []string) (*Lane, error) {
	if !s.proxyMode {
		return nil, errors.New("start lane: needs proxy mode")
	}
	if role == "" {
		return nil, errors.New("start lane: empty role")
	}
	g, err := s.start(startOpts{role: role, cmd: cmd})
	if err != nil {
		return nil, fmt.Errorf("start lane %s: %w", role, err)
	}
	if err := s.waitReady(ctx, g); err != nil {
		s.kill(g)
		return nil, fmt.Errorf("start lane %s: %w", role, err)
	}
	return &Lane{s: s, g: g}, nil
}

// Addr is the lane's private address ("127.0.0.1:port").
func (l *Lane) Addr() string { return l.g.addr }

// Gen is the lane's generation number (unique among all processes).
func (l *Lane) Gen() int { return l.g.n }

// Done is closed when the process has exited.
func (l *Lane) Done() <-chan struct{} { return l.g.done }

// Stop stops the lane: stop signal, SIGKILL when ctx ends first.
func (l *Lane) Stop(ctx context.Context) error {
	d := l.s.opts.Drain
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	l.s.stop(l.g, d)
	return nil
}

// State is the lane's lifecycle state.
func (l *Lane) State() api.GenState {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.g.state
}
