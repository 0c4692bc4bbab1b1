package supervisor

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/readiness"
)

// acquire takes the transition lock for an internal transition (first
// start, restart, automatic rollback) without waiting.
func (s *Supervisor) acquire() bool { return s.tryAcquire("internal") }

func (s *Supervisor) tryAcquire(kind string) bool {
	select {
	case s.busy <- struct{}{}:
		s.mu.Lock()
		s.upgrading = true
		s.busyKind = kind
		s.mu.Unlock()
		return true
	default:
		return false
	}
}

// acquireUser takes the transition lock for an upgrade or rollback asked
// for by a user: refused (ErrBusy) while another one runs, but it waits
// for an internal transition, such as the first start, to finish.
func (s *Supervisor) acquireUser(ctx context.Context, kind string) error {
	for {
		if s.tryAcquire(kind) {
			return nil
		}
		s.mu.Lock()
		k, ch := s.busyKind, s.changed
		s.mu.Unlock()
		if k != "internal" && k != "" {
			return ErrBusy
		}
		select {
		case <-ch:
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release ends a transition; if it left nothing serving, a restart loop
// takes over.
func (s *Supervisor) release() {
	s.mu.Lock()
	s.upgrading = false
	s.busyKind = ""
	none := s.serving == nil && s.ctx.Err() == nil
	var cmd []string
	if none {
		cmd = s.lastCmdLocked()
	}
	s.mu.Unlock()
	<-s.busy
	if none {
		s.scheduleRestart(cmd)
	}
}

// lastCmdLocked is the command line of the generation that served last
// (not of a failed upgrade's): what a restart runs.
func (s *Supervisor) lastCmdLocked() []string {
	if s.servedCmd != nil {
		return s.servedCmd
	}
	return s.opts.Command
}

// startReady starts a generation and waits for it to be ready.
func (s *Supervisor) startReady(ctx context.Context, so startOpts) (*generation, error) {
	g, err := s.start(so)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, g); err != nil {
		s.abort(g)
		return nil, err
	}
	return g, nil
}

// waitReady waits until g is ready, exits, or the start timeout passes.
func (s *Supervisor) waitReady(ctx context.Context, g *generation) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	fail := func(why string) error {
		s.Event(g.n, "not-ready", why)
		return fmt.Errorf("generation %d not ready: %s", g.n, why)
	}
	var tick, delay <-chan time.Time
	var notified <-chan struct{} // nil unless notify: a closed channel would spin the loop
	switch s.ready.Kind {
	case readiness.Notify:
		notified = g.notify.Ready()
	case readiness.TCP, readiness.HTTP:
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	case readiness.Delay:
		delay = time.After(s.ready.Delay)
	}
	for {
		select {
		case <-notified:
			return s.markReady(g)
		case <-delay:
			return s.markReady(g)
		case <-tick:
			if s.ready.Probe(ctx, s.probeHTTP, g.addr) == nil {
				return s.markReady(g)
			}
		case <-g.done:
			return fail("exited before ready: " + exitReason(g))
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fail(fmt.Sprintf("no readiness within %s", s.opts.StartTimeout))
			}
			return fail(ctx.Err().Error())
		case m := <-g.ctl.Answers():
			if m.Type == api.CtlError {
				return fail("child reported: " + m.Error)
			}
		}
	}
}

func (s *Supervisor) markReady(g *generation) error {
	g.ctl.Settle()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !g.alive() {
		return fmt.Errorf("generation %d exited at readiness", g.n)
	}
	g.ready = time.Now()
	g.state = api.GenReady
	s.eventLocked(g.n, "ready", fmt.Sprintf("ready after %s", g.ready.Sub(g.started).Round(time.Millisecond)))
	return nil
}

func exitReason(g *generation) string {
	if g.exitErr != nil {
		return g.exitErr.Error()
	}
	return "exit status 0"
}

// cutover makes g serve. old (may be nil) is parked when it can be brought
// back instantly (proxy mode, or a child that speaks park/resume), else it
// drains at once. committed means old already handed its state to g.
func (s *Supervisor) cutover(g, old *generation, committed bool) {
	s.mu.Lock()
	g.state = api.GenServing
	g.served = time.Now()
	s.serving = g
	s.servedCmd = g.cmd
	if s.proxyMode {
		s.proxy.SetPrimary(g.backend)
	}
	s.eventLocked(g.n, "serving", "serving")
	var drainOld bool
	if old != nil {
		s.prevCmd = old.cmd
		switch {
		case !old.alive():
		case s.proxyMode:
			// graft parks it by not routing to it. After a state handoff
			// it must hear commit (it holds mutations until then) and it
			// stops accepting, so it cannot be a fallback either.
			if committed {
				if err := old.send(api.Control{Type: api.CtlCommit}, nil); err == nil {
					old.toldPark = true
				}
			} else {
				s.proxy.SetFallback(old.backend)
			}
			old.state, s.parked = api.GenParked, old
		case old.drains():
			msg := api.CtlPark
			if committed {
				msg = api.CtlCommit
			}
			if err := old.send(api.Control{Type: msg}, nil); err != nil {
				drainOld = true
			} else {
				old.toldPark = true
				old.state, s.parked = api.GenParked, old
			}
		default:
			drainOld = true
		}
		if s.parked == old {
			s.eventLocked(old.n, "parked", fmt.Sprintf("parked for %s of probation", s.opts.Probation))
		}
	}
	s.probation++
	token := s.probation
	if old != nil {
		s.probationEnd = time.Now().Add(s.opts.Probation)
	} else {
		s.probationEnd = time.Time{}
	}
	notify := !s.notified
	s.notified = true
	s.mu.Unlock()
	s.metricCutover()
	if notify && s.opts.NotifySocket != "" {
		if err := readiness.SdNotify(s.opts.NotifySocket, "READY=1"); err != nil {
			s.log.Warn("sd_notify", "err", err)
		}
	}
	if drainOld {
		s.wg.Go(func() { s.stop(old, s.opts.Drain) })
	} else if old != nil && !s.proxyMode && s.parkedGen(old) {
		// The old generation accepts from the same socket until it has
		// handled park: wait for its answer so that "serving" means alone.
		s.awaitParked(old)
	}
	if old != nil {
		s.wg.Go(func() { s.watchProbation(g, token) })
	}
}

func (s *Supervisor) parkedGen(g *generation) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parked == g
}

// awaitParked waits (at most 5s) for g to answer park/commit with parked.
func (s *Supervisor) awaitParked(g *generation) {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case m := <-g.ctl.Answers():
			if m.Type == api.CtlParked {
				return
			}
		case <-g.done:
			return
		case <-t.C:
			s.Event(g.n, "park-slow", "no parked answer within 5s")
			return
		}
	}
}

// watchProbation ends the probation that began with cutover token: it
// probes g's health (proxy mode tcp/http readiness) and rolls back when g
// fails twice in a row; at the end the parked generation drains.
func (s *Supervisor) watchProbation(g *generation, token int) {
	end := time.NewTimer(s.opts.Probation)
	defer end.Stop()
	var tick <-chan time.Time
	if s.proxyMode && (s.ready.Kind == readiness.TCP || s.ready.Kind == readiness.HTTP) {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	fails := 0
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-g.done:
			return // exited() decides
		case <-tick:
			if err := s.ready.Probe(s.ctx, s.probeHTTP, g.addr); err != nil {
				fails++
				if fails >= 2 && s.current(token) {
					s.Event(g.n, "unhealthy", "health probe failed during probation: "+err.Error())
					if s.acquire() {
						_, err := s.rollbackLocked(s.ctx, "health probe failed during probation")
						s.release()
						if err != nil {
							s.Event(g.n, "rollback-failed", err.Error())
						}
					}
					return
				}
			} else {
				fails = 0
			}
		case <-end.C:
			s.endProbation(token)
			return
		}
	}
}

func (s *Supervisor) current(token int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probation == token
}

// endProbation drains the parked generation if the probation token is still
// the current one (token 0: whatever probation runs).
func (s *Supervisor) endProbation(token int) {
	s.mu.Lock()
	p := s.parked
	if token == 0 || token == s.probation {
		s.probationEnd = time.Time{}
	}
	if p == nil || (token != 0 && token != s.probation) {
		s.mu.Unlock()
		return
	}
	s.parked = nil
	s.probationEnd = time.Time{}
	if s.proxyMode {
		s.proxy.SetFallback(nil)
	}
	s.eventLocked(p.n, "probation-end", "probation over; draining")
	s.mu.Unlock()
	s.wg.Go(func() { s.stop(p, s.opts.Drain) })
}

// stop drains g within d: proxy mode waits for its in-flight requests;
// children that speak the control protocol get drain, others the stop
// signal; SIGKILL at the deadline.
func (s *Supervisor) stop(g *generation, d time.Duration) {
	g.stopping.Store(true)
	if !g.alive() {
		return
	}
	s.mu.Lock()
	if g.state != api.GenExited {
		g.state = api.GenDraining
		s.eventLocked(g.n, "draining", fmt.Sprintf("draining within %s", d))
	}
	s.mu.Unlock()
	deadline := time.Now().Add(d)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if g.backend != nil {
		g.backend.Idle(ctx)
		g.backend.Close()
	}
	if g.drains() && g.send(api.Control{Type: api.CtlDrain, DeadlineMS: time.Until(deadline).Milliseconds()}, nil) == nil {
	} else {
		g.proc.Signal(s.opts.StopSignal)
	}
	select {
	case <-g.done:
		return
	case <-ctx.Done():
	}
	s.Event(g.n, "kill", fmt.Sprintf("still running after the %s drain deadline: SIGKILL", d))
	s.kill(g)
}

// abort stops a generation that did not become ready. It gets the drain
// (not SIGKILL at once): in socket mode it may already have accepted
// connections from the shared socket.
func (s *Supervisor) abort(g *generation) {
	s.stop(g, min(s.opts.Drain, 5*time.Second))
}

// kill SIGKILLs g's process group and waits for it.
func (s *Supervisor) kill(g *generation) {
	g.stopping.Store(true)
	g.proc.Signal(syscall.SIGKILL)
	<-g.done
}

// exited records g's exit and reacts to a crash.
func (s *Supervisor) exited(g *generation, err error) {
	s.mu.Lock()
	g.state = api.GenExited
	g.exited = time.Now()
	g.exitErr = err
	wasServing := s.serving == g
	wasParked := s.parked == g
	expected := g.stopping.Load()
	if wasParked {
		s.parked = nil
		if s.proxyMode {
			s.proxy.SetFallback(nil)
		}
	}
	if wasServing {
		s.serving = nil
		if s.proxyMode {
			// Route to the parked generation at once if there is one; the
			// rollback below makes it official.
			if p := s.parked; p != nil && p.alive() {
				s.proxy.SetPrimary(p.backend)
			} else {
				s.proxy.SetPrimary(nil)
			}
		}
	}
	reason := "exit status 0"
	if err != nil {
		reason = err.Error()
	}
	s.eventLocked(g.n, "exited", reason)
	s.pruneLocked()
	crashed := !expected && g.role == "" && (wasServing || wasParked)
	var hooks []func(Crash)
	if crashed {
		s.eventLocked(g.n, "crash", fmt.Sprintf("generation %d died unexpectedly: %s", g.n, reason))
		hooks = append(hooks, s.onCrash...)
	}
	inProbation := wasServing && (s.parked != nil || time.Now().Before(s.probationEnd)) && s.prevCmd != nil
	ctxDone := s.ctx.Err() != nil
	s.mu.Unlock()
	if crashed {
		s.metricCrash()
		c := Crash{Gen: g.n, Time: g.exited, Err: err, Stderr: g.proc.Stderr(), Serving: wasServing}
		if g.backend != nil {
			c.InFlight = g.backend.InFlight()
		}
		for _, f := range hooks {
			f(c)
		}
	}
	close(g.done)
	if g.backend != nil {
		g.backend.Close()
	}
	if !crashed || !wasServing || ctxDone {
		return
	}
	if inProbation {
		s.wg.Go(func() {
			if !s.acquire() {
				return // the transition in progress ends with a restart if nothing serves
			}
			_, err := s.rollbackLocked(s.ctx, fmt.Sprintf("generation %d exited during probation", g.n))
			if err != nil {
				s.Event(g.n, "rollback-failed", err.Error())
			}
			s.release()
		})
		return
	}
	s.scheduleRestart(g.cmd)
}

// pruneLocked forgets all but the last maxExited exited generations.
func (s *Supervisor) pruneLocked() {
	const maxExited = 20
	exited := 0
	for _, g := range s.gens {
		if g.state == api.GenExited {
			exited++
		}
	}
	if exited <= maxExited {
		return
	}
	kept := s.gens[:0]
	for _, g := range s.gens {
		if g.state == api.GenExited && exited > maxExited {
			exited--
			continue
		}
		kept = append(kept, g)
	}
	clear(s.gens[len(kept):])
	s.gens = kept
}

// scheduleRestart starts the restart loop unless one runs.
func (s *Supervisor) scheduleRestart(cmd []string) {
	s.mu.Lock()
	if s.restartOn || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.restartOn = true
	s.mu.Unlock()
	s.wg.Go(func() { s.restartLoop(cmd) })
}

// restartLoop brings a generation back with exponential backoff until one
// serves, something else (an upgrade) made one serve, or Run ends.
func (s *Supervisor) restartLoop(cmd []string) {
	defer func() {
		s.mu.Lock()
		s.restartOn = false
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		delay := s.backoff
		s.backoff = min(2*s.backoff, s.opts.MaxRestartBackoff)
		s.mu.Unlock()
		s.Event(0, "restart", fmt.Sprintf("restarting in %s", delay))
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(delay):
		}
		if !s.acquire() {
			continue // an upgrade is in progress; look again after the next delay
		}
		s.mu.Lock()
		serving := s.serving != nil
		s.mu.Unlock()
		if serving {
			s.mu.Lock()
			s.upgrading, s.busyKind = false, ""
			s.mu.Unlock()
			<-s.busy
			return
		}
		s.metricRestarts.Inc()
		g, err := s.startReady(s.ctx, startOpts{cmd: cmd})
		if err == nil {
			s.cutover(g, nil, false)
			s.wg.Go(func() { s.resetBackoff(g) })
		} else {
			s.Event(0, "restart-failed", err.Error())
		}
		s.mu.Lock()
		s.upgrading, s.busyKind = false, ""
		s.mu.Unlock()
		<-s.busy
		if err == nil {
			return
		}
	}
}

// resetBackoff resets the restart delay once g has served stably.
func (s *Supervisor) resetBackoff(g *generation) {
	stable := max(10*time.Second, 10*s.opts.RestartBackoff)
	select {
	case <-time.After(stable):
		s.mu.Lock()
		if s.serving == g {
			s.backoff = s.opts.RestartBackoff
		}
		s.mu.Unlock()
	case <-g.done:
	case <-s.ctx.Done():
	}
}
