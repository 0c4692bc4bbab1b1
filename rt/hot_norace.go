//go:build !race

package rt

// hot reports whether s is on, for the checks that generated code inlines
// into loops and next to allocations. A plain load: the compiler folds it
// into one compare with memory (an atomic load is a load and a test: one
// more instruction per loop iteration). It races benignly with
// setSiteLocked's atomic store (a word-sized read observes some value
// written, by the Go memory model); the race detector would report it, so
// race builds use hot_race.go.
func (s *Site) hot() bool { return s.on != 0 }
