// Package funcseal is the supervisor side of the in-process self-healing
// loop: when a generation of a program built with graft build dies of a Go
// panic, it maps the panicking goroutine's frames to the innermost function
// that has a patch point (from the build's manifest) and starts every later
// generation with that point sealed (GRAFT_SEALED), so the crashing function
// returns an error (or a typed panic that its nearest instrumented caller
// with an error result converts) instead of taking the service down.
package funcseal

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/supervisor"
)

// Supervisor is what funcseal needs of internal/supervisor.
type Supervisor interface {
	OnCrash(f func(supervisor.Crash))
	AddEnv(f func(gen int) []string)
	Event(gen int, kind, msg string)
}

// Options configure Attach.
type Options struct {
	Logger *slog.Logger
	// Max bounds how many functions get sealed (0: 16); past it, crashes
	// are only reported.
	Max int
}

// Sealer keeps the set of sealed points.
type Sealer struct {
	sup    Supervisor
	log    *slog.Logger
	points map[string]bool
	max    int

	mu     sync.Mutex
	sealed []string
}

var _ Supervisor = (*supervisor.Supervisor)(nil)

// Attach reads the manifest at manifestPath and hooks sup's crashes.
func Attach(sup Supervisor, manifestPath string, opts Options) (*Sealer, error) {
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, fmt.Errorf("funcseal: %w", err)
	}
	var m api.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("funcseal: manifest %s: %w", manifestPath, err)
	}
	s := New(sup, &m, opts)
	sup.OnCrash(s.crashed)
	sup.AddEnv(s.env)
	return s, nil
}

// New makes a Sealer for manifest m without hooking sup (Attach does).
func New(sup Supervisor, m *api.Manifest, opts Options) *Sealer {
	s := &Sealer{sup: sup, points: map[string]bool{}, max: opts.Max, log: opts.Logger}
	if s.max == 0 {
		s.max = 16
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.log = s.log.With("component", "funcseal")
	for _, p := range m.Points {
		s.points[p.ID] = true
	}
	return s
}

// Sealed returns the sealed point ids.
func (s *Sealer) Sealed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sealed...)
}

func (s *Sealer) env(gen int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sealed) == 0 {
		return nil
	}
	return []string{"GRAFT_SEALED=" + strings.Join(s.sealed, ",")}
}

func (s *Sealer) crashed(c supervisor.Crash) {
	reason, frames := ParseTrace(c.Stderr)
	if reason == "" {
		s.log.Info("crash without a Go panic trace: nothing to seal", "gen", c.Gen, "err", c.Err)
		return
	}
	id := s.Culprit(frames)
	if id == "" {
		s.log.Warn("panic in no instrumented function", "gen", c.Gen, "panic", reason)
		s.sup.Event(c.Gen, "crash", "panic outside instrumented functions, nothing sealed: "+reason)
		return
	}
	s.mu.Lock()
	for _, x := range s.sealed {
		if x == id {
			s.mu.Unlock()
			s.log.Warn("sealed function crashed again", "gen", c.Gen, "point", id, "panic", reason)
			s.sup.Event(c.Gen, "crash", fmt.Sprintf("%s is sealed but the program still crashed in it: %s", id, reason))
			return
		}
	}
	if len(s.sealed) >= s.max {
		s.mu.Unlock()
		s.sup.Event(c.Gen, "crash", fmt.Sprintf("not sealing %s: %d functions sealed already", id, s.max))
		return
	}
	s.sealed = append(s.sealed, id)
	sort.Strings(s.sealed)
	s.mu.Unlock()
	s.log.Warn("sealing crashing function for the next generations", "gen", c.Gen, "point", id, "panic", reason)
	s.sup.Event(c.Gen, "sealed", fmt.Sprintf("sealed %s (crashed: %s); next generations start with GRAFT_SEALED", id, reason))
}

// Culprit returns the innermost frame (first in trace order) whose function,
// or for a closure its enclosing function, has a patch point.
func (s *Sealer) Culprit(frames []string) string {
	for _, f := range frames {
		for name := f; name != ""; name = enclosing(name) {
			if s.points[name] {
				return name
			}
		}
	}
	return ""
}

// enclosing strips one closure suffix: "p.F.func1" → "p.F",
// "p.F.func1.2" → "p.F.func1", "p.F.gowrap1" → "p.F"; "" when none.
func enclosing(fn string) string {
	i := strings.LastIndexByte(fn, '.')
	if i < 0 {
		return ""
	}
	last := fn[i+1:]
	if strings.HasPrefix(last, "func") || strings.HasPrefix(last, "gowrap") || strings.Trim(last, "0123456789") == "" {
		return fn[:i]
	}
	return ""
}
