package rule

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNoRule is returned when no rule separates the crashing requests from
// the benign ones.
var ErrNoRule = errors.New("no rule separates the crashing requests from benign ones")

// Head is a request's method and route template: requests are only ever
// generalized together when their heads agree.
type Head struct{ Method, Template string }

// HeadOf returns in's head.
func HeadOf(in *Input) Head { return Head{in.Method, Template(in.Path)} }

// Profile is a request with its features computed once, for derivations
// that test one request against many candidate rules.
type Profile struct {
	in    *Input
	head  Head
	feats map[string]pred
}

// NewProfile computes in's features.
func NewProfile(in *Input) *Profile {
	preds := featurePreds(in)
	p := &Profile{in: in, head: HeadOf(in), feats: make(map[string]pred, len(preds))}
	for _, f := range preds {
		p.feats[f.String()] = f
	}
	return p
}

// Input is the profiled request.
func (p *Profile) Input() *Input { return p.in }

// Head is the profiled request's head.
func (p *Profile) Head() Head { return p.head }

// Covers reports whether the derived match m (all of whose predicates are
// features) matches the profiled request. For derived rules this is
// equivalent to m.Matches(p.Input()), without walking the body again.
func (p *Profile) Covers(m *Match) bool {
	if !m.headMatches(p.in.Method, p.in.Path) {
		return false
	}
	for _, q := range m.preds {
		if _, ok := p.feats[q.String()]; !ok {
			return false
		}
	}
	return true
}

// Derive returns the narrowest rule that matches every request in crashing
// (their least general generalization in the feature lattice: the
// intersection of their features) and checks that it matches none of
// benign.
func Derive(crashing, benign []*Profile) (*Match, error) {
	if len(crashing) == 0 {
		return nil, fmt.Errorf("derive rule: %w: no crashing request", ErrNoRule)
	}
	first := crashing[0]
	m := &Match{Method: first.in.Method, Path: literalPath(first.in.Path, false)}
	for _, c := range crashing[1:] {
		if c.head != first.head {
			return nil, fmt.Errorf("derive rule: %w: %s %s and %s %s differ in route", ErrNoRule,
				first.head.Method, first.head.Template, c.head.Method, c.head.Template)
		}
		if literalPath(c.in.Path, false) != m.Path {
			m.Path = first.head.Template
		}
	}
	for key, f := range first.feats {
		all := true
		for _, c := range crashing[1:] {
			if _, ok := c.feats[key]; !ok {
				all = false
				break
			}
		}
		if all {
			m.preds = append(m.preds, f)
		}
	}
	m.normalize()
	m.sortEval()
	for _, b := range benign {
		if b.Covers(m) {
			return nil, fmt.Errorf("derive rule: %w: %q matches benign %s %s", ErrNoRule, m.String(), b.in.Method, b.in.Path)
		}
	}
	return m, nil
}

// WithPath returns m on another path: the same method and predicates.
func (m *Match) WithPath(path string) *Match {
	c := *m
	c.Path = path
	return &c
}

// Shape is what m says about the structure of a request: the subjects it
// looks at and their JSON types, without values, lengths or kinds. Rules
// of one shape derived from different crashes describe variants of one
// input.
func (m *Match) Shape() string {
	var parts []string
	for _, p := range m.preds {
		part := p.subject()
		if p.op == opType || p.op == opAbsent {
			part = p.String()
		}
		parts = append(parts, part)
	}
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), " ")
}

// Typed reports whether m pins the JSON type of every JSON subject it
// names. A rule derived from requests that disagree on a key's type (null
// in one, an object in the other) lost the type of the very key that
// differs.
func (m *Match) Typed() bool {
	typed := map[string]bool{}
	for _, p := range m.preds {
		if p.op == opType {
			typed[p.name] = true
		}
	}
	for _, p := range m.preds {
		if p.src == srcJSON && !typed[p.name] {
			return false
		}
	}
	return true
}
