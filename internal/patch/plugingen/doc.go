// Package plugingen writes the Go source of a graft patch plugin from an
// admitted diff: the new bodies of the replaced functions and everything
// they reach that travels in the patch (new helpers, constants, types,
// variables, side tables for new struct fields), rewritten so they compile
// outside their package and reach the running program's unexported
// functions, variables and fields through the build's exports, rt's
// registry and layout offsets. Package patch diffs, builds, signs and
// applies; this package only generates.
package plugingen
