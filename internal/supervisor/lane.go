package supervisor

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/idle"
)

// Lane is a process outside the main line of generations (proxy mode),
// such as a shadow candidate. Its exit is never a crash of the service.
type Lane struct {
	s *Supervisor
	g *generation
}

// LanePriority is the CPU priority a lane's process runs at.
type LanePriority string

const (
	// PriorityIdle runs every thread of the lane under SCHED_IDLE (or at
	// nice 19 where SCHED_IDLE is refused): the lane only gets the CPU the
	// service and everything else leave over. The default.
	PriorityIdle LanePriority = "idle"
	// PriorityNormal runs the lane like a generation.
	PriorityNormal LanePriority = "normal"
)

// ParseLanePriority parses "idle" or "normal"; "" is the default, idle.
func ParseLanePriority(s string) (LanePriority, error) {
	switch LanePriority(s) {
	case "", PriorityIdle:
		return PriorityIdle, nil
	case PriorityNormal:
		return PriorityNormal, nil
	}
	return "", fmt.Errorf("lane priority %q: want idle or normal", s)
}

// LaneOptions configures StartLaneWith; the zero value is StartLane's.
type LaneOptions struct {
	// Priority is the lane's CPU priority; "" means PriorityIdle.
	Priority LanePriority
}

// StartLane starts cmd with its own private {port}/{addr}/PORT and waits
// for it to be ready like a generation, at the lowest CPU priority; its
// output is captured with role as prefix. role: "candidate" or "secondary".
func (s *Supervisor) StartLane(ctx context.Context, role string, cmd []string) (*Lane, error) {
	return s.StartLaneWith(ctx, role, cmd, LaneOptions{})
}

// StartLaneWith is StartLane with options.
func (s *Supervisor) StartLaneWith(ctx context.Context, role string, cmd []string, opts LaneOptions) (*Lane, error) {
	if !s.proxyMode {
		return nil, errors.New("start lane: needs proxy mode")
	}
	if role == "" {
		return nil, errors.New("start lane: empty role")
	}
	prio, err := ParseLanePriority(string(opts.Priority))
	if err != nil {
		return nil, fmt.Errorf("start lane %s: %w", role, err)
	}
	g, err := s.start(startOpts{role: role, cmd: cmd, lowPriority: prio == PriorityIdle})
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

// Pid is the lane's process id.
func (l *Lane) Pid() int { return l.g.proc.Pid }

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

// schedIdle is Linux's SCHED_IDLE policy.
const schedIdle = idle.SchedIdle

// forkExecLowPriority is syscall.ForkExec for a lane: the child starts at
// the lowest CPU priority, with every thread it ever has, in the idle
// cgroup where there is one (idle.Start says how and why).
func (s *Supervisor) forkExecLowPriority(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	return idle.Start(s.log, "lane", func() (int, error) { return syscall.ForkExec(path, argv, attr) })
}

// lowerThreadPriority puts the calling thread under SCHED_IDLE, or at nice
// 19 where that is refused, and says which.
func lowerThreadPriority() (string, error) { return idle.Lower() }
