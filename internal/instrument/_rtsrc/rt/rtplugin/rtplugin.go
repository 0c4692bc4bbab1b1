// Package rtplugin loads graft patches (Go plugins) into a running program
// built with `graft build --patchable`, which links it into the main
// package. It adds the rt admin ops "patch.apply" and "patch.list". It
// imports "plugin", so the program needs cgo and is dynamically linked;
// that is why it is opt-in.
package rtplugin

import (
	"encoding/json"
	"fmt"
	"plugin"
	"time"

	"github.com/graftdev/graft/rt"
)

// Apply is the argument of op "patch.apply".
type Apply struct {
	Path    string `json:"path"`     // absolute path of the plugin (.so)
	ID      string `json:"id"`       // patch id ("" picks one)
	WaitMS  int64  `json:"wait_ms"`  // bound of the safe-point wait (0: 1000)
	PerCall bool   `json:"per_call"` // skip the safe point: old and new bodies may overlap
}

// Applied is the result of op "patch.apply".
type Applied struct {
	ID          string   `json:"id"`
	Funcs       []string `json:"funcs"`
	SafePointMS float64  `json:"safe_point_ms"`
	LoadMS      float64  `json:"load_ms"`
}

func init() {
	rt.HandleOp("patch.apply", func(arg json.RawMessage) (any, error) {
		var a Apply
		if err := json.Unmarshal(arg, &a); err != nil {
			return nil, fmt.Errorf("patch.apply: %w", err)
		}
		return Load(a)
	})
	rt.HandleOp("patch.list", func(json.RawMessage) (any, error) {
		return rt.Patches(), nil
	})
}

// Load opens the plugin, runs its GraftInit (func() error) if it has one,
// and installs its Replacements (*map[string]any, point id → function) at a
// safe point. A plugin cannot be unloaded: a refused patch stays loaded but
// inert.
func Load(a Apply) (*Applied, error) {
	start := time.Now()
	p, err := plugin.Open(a.Path)
	if err != nil {
		return nil, fmt.Errorf("patch.apply: %w", err)
	}
	if s, err := p.Lookup("GraftInit"); err == nil {
		f, ok := s.(func() error)
		if !ok {
			return nil, fmt.Errorf("patch.apply: GraftInit is %T, not func() error", s)
		}
		if err := f(); err != nil {
			return nil, fmt.Errorf("patch.apply: GraftInit: %w", err)
		}
	}
	s, err := p.Lookup("Replacements")
	if err != nil {
		return nil, fmt.Errorf("patch.apply: %w", err)
	}
	m, ok := s.(*map[string]any)
	if !ok {
		return nil, fmt.Errorf("patch.apply: Replacements is %T, not *map[string]any", s)
	}
	load := time.Since(start)
	pt, waited, err := rt.InstallSafe(a.ID, *m, rt.InstallOptions{Wait: time.Duration(a.WaitMS) * time.Millisecond, PerCall: a.PerCall})
	if err != nil {
		return nil, err
	}
	return &Applied{ID: pt.ID, Funcs: pt.Funcs, SafePointMS: float64(waited.Microseconds()) / 1000, LoadMS: float64(load.Microseconds()) / 1000}, nil
}
