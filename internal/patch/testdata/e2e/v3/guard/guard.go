// Package guard decides which inputs the service accepts.
package guard

import (
	"strings"
	"sync/atomic"
)

var maxLen = 32

var denied atomic.Int64

type policy struct {
	banned []string
	name   string
}

var current = &policy{banned: []string{"drop"}, name: "default"}

// Check answers "ok" or "denied".
func Check(s string) string {
	if allowed(current, s) {
		return "ok"
	}
	return "denied"
}

// Denied counts refusals.
func Denied() int64 { return denied.Load() }

func allowed(p *policy, s string) bool {
	if len(s) > maxLen {
		denied.Add(1)
		return false
	}
	for _, b := range p.banned {
		if strings.Contains(s, b) || extra[s] {
			denied.Add(1)
			return false
		}
	}
	return true
}

// extra is built when the patch loads; its builder panics, as a buggy fix
// might.
var extra = build(nil)

func build(words []string) map[string]bool {
	if len(words) == 0 {
		panic("guard: no words")
	}
	m := map[string]bool{}
	for _, w := range words {
		m[w] = true
	}
	return m
}
