// Package live lets a Go server be upgraded in place by a supervisor such as
// graft without losing a connection, a request or a byte of its in-memory
// state.
//
// A program using live takes its listeners by name ([Listen]); under a
// supervisor they are the inherited sockets of the systemd socket-activation
// protocol, run alone the same call binds the default address, so one binary
// runs anywhere. It registers its state ([Register]) with a schema version,
// an encoder and a decoder, and migrations between versions ([Migrate]). It
// then calls [Ready], which loads the state handed down by the previous
// generation (if any), announces readiness, and starts following the
// supervisor's control messages (park, resume, handoff, receive, commit,
// drain; SIGTERM for plain supervisors). [Serve] serves HTTP with a drain
// that loses nothing: it stops accepting, answers every request already
// accepted or already on the wire, answers the next request of a keep-alive
// connection with "Connection: close" instead of cutting it, and closes
// hijacked connections only at the deadline.
//
// Work that mutates registered state runs inside [Update] (or an HTTP handler
// wrapped with [Mutating]). While the state is being handed over such work
// waits; once the successor owns the state, waiting HTTP requests are
// forwarded to it through the shared listener address, so nothing is lost
// and nothing is applied twice.
//
// The package-level functions use one process-wide [Gen]; tests and programs
// that want several use [New].
//
// live imports only the standard library and graft's api package, so it is
// cheap to link into any server.
package live
