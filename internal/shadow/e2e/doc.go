// Package e2e holds end-to-end tests of graft shadow and graft report: a
// real supervisor in proxy mode with shadowing attached, real child
// processes (the test binary re-run as a fixture service) and the CLI
// talking to the admin socket. It has no code of its own.
package e2e
