// Package rt is the runtime linked into programs built with `graft build`
// or `graft test`. It holds one patch point per instrumented function, the
// latent check sites compiled into those functions, a registry of a
// package's functions and variables (so patch plugins can reach unexported
// ones), and an admin socket through which graft switches sites on and off,
// seals and unseals points, and installs replacement bodies.
//
// Generated code calls rt; users do not. rt imports only the standard
// library and graft's api package, because it is linked into users'
// programs. The protocol and the generated code are described in docs/rt.md.
package rt
