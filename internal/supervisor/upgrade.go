package supervisor

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/control"
)

// Upgrade starts the next generation with cmd (empty: the serving
// generation's command line again, resolved anew on disk), waits for it to
// be ready, cuts over and parks the old generation for the probation. It
// returns once the new generation serves; on failure the old one keeps
// serving and the error says why. A second Upgrade while one runs gets
// ErrBusy: upgrades are serialized, not queued.
func (s *Supervisor) Upgrade(ctx context.Context, cmd []string) (*api.UpgradeResult, error) {
	if err := s.acquireUser(ctx, "upgrade"); err != nil {
		s.metricUpgrade("upgrade", err)
		return nil, err
	}
	defer s.release()
	return s.upgradeLocked(ctx, cmd, "upgrade")
}

func (s *Supervisor) upgradeLocked(ctx context.Context, cmd []string, kind string) (*api.UpgradeResult, error) {
	// A generation parked by an earlier upgrade is two versions old now.
	s.endProbation(0)
	s.mu.Lock()
	old := s.serving
	if len(cmd) == 0 {
		if old != nil {
			cmd = old.cmd
		} else {
			cmd = s.lastCmdLocked()
		}
	}
	s.eventLocked(0, kind, kind+": "+strings.Join(cmd, " "))
	s.mu.Unlock()
	res, err := s.replace(ctx, old, cmd)
	s.metricUpgrade(kind, err)
	if err != nil {
		s.Event(0, kind+"-failed", err.Error())
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	return res, nil
}

// replace starts cmd as the successor of old (nil: nothing serves) and cuts
// over to it once ready.
func (s *Supervisor) replace(ctx context.Context, old *generation, cmd []string) (*api.UpgradeResult, error) {
	withState := old != nil && old.alive() && old.hasState()
	var stateR, stateW *os.File
	if withState {
		var err error
		if stateR, stateW, err = control.StatePair(); err != nil {
			return nil, err
		}
	}
	g, err := s.start(startOpts{cmd: cmd, state: stateR})
	if stateR != nil {
		stateR.Close() // the child holds its own copy
	}
	if err != nil {
		if stateW != nil {
			stateW.Close()
		}
		return nil, err
	}
	if withState {
		err := old.send(api.Control{Type: api.CtlHandoff}, stateW)
		stateW.Close()
		if err != nil {
			s.kill(g)
			return nil, fmt.Errorf("state handoff from generation %d: %w", old.n, err)
		}
		s.Event(old.n, "handoff", fmt.Sprintf("state to generation %d", g.n))
	}
	if err := s.waitReady(ctx, g); err != nil {
		s.abort(g)
		if withState {
			// Its state is intact: it only wrote a copy.
			if err := old.send(api.Control{Type: api.CtlResume}, nil); err != nil {
				s.log.Warn("resume after failed handoff", "gen", old.n, "err", err)
			}
		}
		return nil, err
	}
	s.cutover(g, old, withState)
	res := &api.UpgradeResult{Version: api.Version, Generation: g.n, ReadyMS: ms(g.ready.Sub(g.started))}
	if old != nil {
		res.Previous = old.n
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Rollback returns to the parked generation at once; without one (after
// the probation, or a socket-mode child that cannot be parked) it starts
// the previous command line as a new generation.
func (s *Supervisor) Rollback(ctx context.Context) (*api.UpgradeResult, error) {
	if err := s.acquireUser(ctx, "rollback"); err != nil {
		return nil, err
	}
	defer s.release()
	return s.rollbackLocked(ctx, "requested")
}

func (s *Supervisor) rollbackLocked(ctx context.Context, why string) (*api.UpgradeResult, error) {
	s.mu.Lock()
	p, cur, prev := s.parked, s.serving, s.prevCmd
	s.mu.Unlock()
	if p == nil || !p.alive() {
		if prev == nil {
			s.metricUpgrade("rollback", ErrNoRollback)
			return nil, ErrNoRollback
		}
		return s.upgradeLocked(ctx, prev, "rollback")
	}
	if p.toldPark {
		if cur != nil && cur.alive() && p.hasState() && cur.ctl.Hello() == nil {
			// With a tcp/http probe it may be ready before its hello
			// arrived: give that a moment, its state must not be left
			// behind.
			select {
			case <-cur.ctl.Greeted():
			case <-cur.done:
			case <-time.After(time.Second):
			}
		}
		if cur != nil && cur.alive() && cur.hasState() && p.hasState() {
			r, w, err := control.StatePair()
			if err != nil {
				return nil, fmt.Errorf("rollback: %w", err)
			}
			err1 := cur.send(api.Control{Type: api.CtlHandoff}, w)
			err2 := p.send(api.Control{Type: api.CtlReceive}, r)
			r.Close()
			w.Close()
			if err2 != nil {
				return nil, fmt.Errorf("rollback: %w", err2)
			}
			if err1 != nil {
				s.log.Warn("rollback: state from the failed generation", "gen", cur.n, "err", err1)
			}
		} else if err := p.send(api.Control{Type: api.CtlResume}, nil); err != nil {
			return nil, fmt.Errorf("rollback: %w", err)
		}
	}
	s.mu.Lock()
	s.parked = nil
	p.toldPark = false
	p.state = api.GenServing
	p.served = time.Now()
	s.serving = p
	s.servedCmd = p.cmd
	if s.proxyMode {
		s.proxy.SetFallback(nil)
		s.proxy.SetPrimary(p.backend)
	}
	s.probation++
	s.probationEnd = time.Time{}
	if cur != nil {
		s.prevCmd = cur.cmd
	}
	s.eventLocked(p.n, "rollback", fmt.Sprintf("rolled back to generation %d: %s", p.n, why))
	s.mu.Unlock()
	s.metricUpgrade("rollback", nil)
	res := &api.UpgradeResult{Version: api.Version, Generation: p.n}
	if cur != nil {
		res.Previous = cur.n
		s.wg.Go(func() { s.stop(cur, s.opts.Drain) })
	}
	return res, nil
}

// Status reports generations, states and recent events.
func (s *Supervisor) Status() *api.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &api.Status{
		Version:   api.Version,
		PID:       os.Getpid(),
		Mode:      "socket",
		Upgrading: s.upgrading,
		Events:    append([]api.Event{}, s.events...),
	}
	if s.proxyMode {
		st.Mode = "proxy"
	}
	for _, l := range s.listeners {
		st.Listeners = append(st.Listeners, api.Listener{Name: l.Name(), Addr: l.Addr()})
	}
	if s.serving != nil {
		st.Serving = s.serving.n
	}
	if s.parked != nil {
		st.Parked = s.parked.n
	}
	st.ProbationEnds = s.probationEnd
	// Every live generation, and the last few that exited.
	exited := 0
	for i := len(s.gens) - 1; i >= 0; i-- {
		g := s.gens[i]
		if g.state == api.GenExited {
			if exited++; exited > 5 {
				continue
			}
		}
		ag := api.Generation{
			Number: g.n, PID: g.proc.Pid, State: g.state, Command: g.cmd, Addr: g.addr,
			Started: g.started, Ready: g.ready, Exited: g.exited, Role: g.role,
		}
		if g.exitErr != nil {
			ag.ExitError = g.exitErr.Error()
		}
		if g.backend != nil {
			ag.Requests = g.backend.Stats().Requests
		}
		st.Generations = append(st.Generations, ag)
	}
	return st
}
