// Package patch is graft's in-process patch builder: it diffs two versions
// of a Go source tree function by function, decides which changes can be
// installed into a running program built with graft build (the admissibility
// rules of OPUS, adapted to Go), and turns admitted changes into a signed
// artifact that rt loads and installs.
//
// The decisions live in internal/patch/diff and the plugin source is written
// by internal/patch/plugingen; this package loads the trees (and the target
// program, to search it for callers), builds against the target, signs,
// verifies and applies.
//
// Admissibility is static and conservative: every refusal names the object
// and the rule that refused it, so an operator can see why a fix needs a
// restart (graft upgrade) instead of a patch.
package patch
