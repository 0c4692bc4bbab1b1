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
		if strings.Contains(normalize(s), b) {
			denied.Add(1)
			return false
		}
	}
	return true
}

// normalize folds case: the fix for "DROP" getting through.
func normalize(s string) string { return strings.ToLower(s) }
