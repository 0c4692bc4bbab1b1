package api

// The generation protocol: what a supervisor hands each child it starts.
//
// Environment of every generation:
//
//	GRAFT_GENERATION=N        the generation number
//	LISTEN_FDS, LISTEN_PID,   socket mode: systemd socket activation; the
//	LISTEN_FDNAMES            listeners are fds 3 .. 3+LISTEN_FDS-1
//	NOTIFY_SOCKET=PATH        a unixgram socket; "READY=1" marks readiness
//	PORT=N                    proxy mode: the private port to listen on
//	GRAFT_CONTROL_FD=K        a SOCK_SEQPACKET unix socket to the supervisor
//	GRAFT_STATE_FD=K          only for a generation started by an upgrade
//	                          whose predecessor announced state: the read
//	                          end of a SOCK_STREAM socket carrying it
//	GRAFT_RT_SOCKET=PATH      where an instrumented program (rt) serves its
//	                          own admin API, so the supervisor can reach it
//	GRAFT_SEALED=ID,ID        patch points rt must start sealed
//
// Control messages are JSON objects, one per SEQPACKET datagram, in both
// directions. A child that never reads its control fd is still supervised
// correctly: the supervisor falls back to signals (see docs/protocol.md).
// State bytes never travel in argv or the environment.

// Control message types.
const (
	// child → supervisor
	CtlHello       = "hello"        // first message; announces capabilities
	CtlHandoffSent = "handoff-sent" // the old generation wrote all its state and closed the fd
	CtlParked      = "parked"       // stopped accepting; in-flight work finished
	CtlError       = "error"        // a step failed; Error says why

	// supervisor → child
	CtlHandoff = "handoff" // carries one fd (SCM_RIGHTS): write your state to it
	CtlReceive = "receive" // carries one fd (SCM_RIGHTS): load state from it, then resume (state going back on rollback)
	CtlCommit  = "commit"  // the successor serves; stop accepting, hand held work over, stay parked
	CtlResume  = "resume"  // the upgrade was aborted or rolled back: accept and mutate again
	CtlPark    = "park"    // stop accepting new work, stay alive (probation)
	CtlDrain   = "drain"   // finish in-flight work within DeadlineMS, then exit
)

// Control is one control message.
type Control struct {
	Type       string   `json:"type"`
	PID        int      `json:"pid,omitempty"`
	State      []string `json:"state,omitempty"`       // hello: names of registered state items
	Drains     bool     `json:"drains,omitempty"`      // hello: understands park/resume/drain
	RT         bool     `json:"rt,omitempty"`          // hello: instrumented with graft build
	Bytes      int64    `json:"bytes,omitempty"`       // handoff-sent
	DeadlineMS int64    `json:"deadline_ms,omitempty"` // drain
	Error      string   `json:"error,omitempty"`
}
