// Package diff decides, change by change, whether a new version of a Go
// source tree can be carried into a running program built with graft
// build: it compares the two versions function by function (and types,
// variables, constants, init, go.mod requirements), applies the
// admissibility rules of docs/patch.md, and places each admitted change on
// a patch point, directly or through the instrumented callers it climbs
// to. Every refusal names the object and the rule. Package patch loads the
// trees, generates (plugingen), builds, signs and applies.
package diff
