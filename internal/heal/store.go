package heal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/heal/rule"
)

// sealRule is an installed seal rule: its wire form, its compiled condition and
// the answer it gives, built once.
type sealRule struct {
	api.SealRule
	match   *rule.Match
	answer  []byte
	expires int64 // unix nanoseconds, 0 never
	hits    atomic.Uint64
	lastHit atomic.Int64
}

func compile(r api.SealRule) (*sealRule, error) {
	m, err := rule.Parse(r.Match)
	if err != nil {
		return nil, err
	}
	r.Match = m.String()
	if r.ID == "" {
		r.ID = m.ID()
	}
	if r.Action == "" {
		r.Action = api.SealActionReject
	}
	if r.Action != api.SealActionReject {
		return nil, fmt.Errorf("rule %s: unknown action %q", r.ID, r.Action)
	}
	if r.Status < 400 || r.Status > 599 {
		return nil, fmt.Errorf("rule %s: status %d is not a 4xx or 5xx", r.ID, r.Status)
	}
	body, _ := json.Marshal(api.SealAnswer{Version: api.Version, Error: "request sealed by graft rule " + r.ID, Rule: r.ID})
	c := &sealRule{SealRule: r, match: m, answer: append(body, '\n')}
	if !r.Expires.IsZero() {
		c.expires = r.Expires.UnixNano()
	}
	c.hits.Store(r.Hits)
	if !r.LastHit.IsZero() {
		c.lastHit.Store(r.LastHit.UnixNano())
	}
	return c, nil
}

// wire returns the rule's current wire form, hits included.
func (r *sealRule) wire() api.SealRule {
	w := r.SealRule
	w.Hits = r.hits.Load()
	if n := r.lastHit.Load(); n != 0 {
		w.LastHit = time.Unix(0, n).UTC()
	}
	return w
}

// store holds the installed rules and persists them to a JSON file (an
// api.SealList document) replaced atomically, so that rules survive
// supervisor restarts and a crash mid-write never leaves half a file.
type store struct {
	path string // "" keeps rules in memory only

	mu    sync.Mutex // serializes changes and writes
	rules map[string]*sealRule
	set   atomic.Pointer[rule.Set[*sealRule]] // what Inspect reads, rebuilt on change

	// writeFile is the OS seam for tests.
	writeFile func(path string, data []byte) error
}

func newStore(path string) *store {
	s := &store{path: path, rules: map[string]*sealRule{}, writeFile: writeAtomic}
	s.set.Store(rule.NewSet[*sealRule](nil))
	return s
}

// load reads the rule file; a missing file is an empty store. Rules that no
// longer compile are skipped and returned as errors beside the count.
func (s *store) load() (bad []error, err error) {
	if s.path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load seal rules: %w", err)
	}
	var doc api.SealList
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("load seal rules %s: %w", s.path, err)
	}
	if doc.Version != api.Version {
		return nil, fmt.Errorf("load seal rules %s: version %d, want %d", s.path, doc.Version, api.Version)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range doc.Rules {
		r, err := compile(w)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		s.rules[r.ID] = r
	}
	s.rebuildLocked()
	return bad, nil
}

func (s *store) rebuildLocked() {
	rs := make([]*sealRule, 0, len(s.rules))
	for _, r := range s.rules {
		rs = append(rs, r)
	}
	// Deterministic order: oldest first, then by id.
	slices.SortFunc(rs, func(a, b *sealRule) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	es := make([]*rule.Entry[*sealRule], len(rs))
	for i, r := range rs {
		es[i] = &rule.Entry[*sealRule]{Match: r.match, Expires: r.expires, Value: r}
	}
	s.set.Store(rule.NewSet(es))
}

func (s *store) saveLocked() error {
	if s.path == "" {
		return nil
	}
	doc := api.SealList{Version: api.Version, Rules: s.listLocked()}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("save seal rules: %w", err)
	}
	if err := s.writeFile(s.path, append(data, '\n')); err != nil {
		return fmt.Errorf("save seal rules: %w", err)
	}
	return nil
}

func (s *store) listLocked() []api.SealRule {
	out := make([]api.SealRule, 0, len(s.rules))
	for _, r := range s.rules {
		out = append(out, r.wire())
	}
	sortRules(out)
	return out
}

func (s *store) list() []api.SealRule {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listLocked()
}

// add installs r unless a rule with its id exists; it returns the installed
// (or existing) rule and whether it existed.
func (s *store) add(r *sealRule) (*sealRule, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.rules[r.ID]; old != nil {
		return old, true, nil
	}
	s.rules[r.ID] = r
	s.rebuildLocked()
	if err := s.saveLocked(); err != nil {
		delete(s.rules, r.ID)
		s.rebuildLocked()
		return nil, false, err
	}
	return r, false, nil
}

// remove deletes rule id; it reports whether it existed.
func (s *store) remove(id string) (*sealRule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rules[id]
	if r == nil {
		return nil, nil
	}
	delete(s.rules, id)
	s.rebuildLocked()
	return r, s.saveLocked()
}

// expire removes the rules expired at now and returns them.
func (s *store) expire(now time.Time) ([]*sealRule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []*sealRule
	for id, r := range s.rules {
		if r.expires != 0 && r.expires <= now.UnixNano() {
			gone = append(gone, r)
			delete(s.rules, id)
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	s.rebuildLocked()
	return gone, s.saveLocked()
}

// flush writes the file so that hit counts survive a restart.
func (s *store) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked()
}

func sortRules(rs []api.SealRule) {
	slices.SortFunc(rs, func(a, b api.SealRule) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// writeAtomic writes data to a temporary file beside path, syncs it and
// renames it over path, then syncs the directory.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".seal-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
