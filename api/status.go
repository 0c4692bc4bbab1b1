package api

import "time"

// GenState is a generation's place in its lifecycle:
// starting → ready → serving → (parked) → draining → exited.
type GenState string

const (
	GenStarting GenState = "starting" // process started, not yet ready
	GenReady    GenState = "ready"    // passed readiness, not yet given traffic
	GenServing  GenState = "serving"  // receives new work
	GenParked   GenState = "parked"   // alive, no new work; rollback target during probation
	GenDraining GenState = "draining" // finishing in-flight work before it is stopped
	GenExited   GenState = "exited"   // process gone
)

// Generation describes one child process of a supervisor.
type Generation struct {
	Number    int       `json:"number"`
	PID       int       `json:"pid"`
	State     GenState  `json:"state"`
	Command   []string  `json:"command"`
	Addr      string    `json:"addr,omitempty"` // proxy mode: the private address
	Started   time.Time `json:"started"`
	Ready     time.Time `json:"ready,omitzero"`
	Exited    time.Time `json:"exited,omitzero"`
	ExitError string    `json:"exit_error,omitempty"`
	Requests  uint64    `json:"requests"`       // proxy mode: requests routed to it
	Role      string    `json:"role,omitempty"` // "" for the main line; "candidate" or "secondary" for shadow lanes
}

// Event is one entry of a supervisor's recent history.
type Event struct {
	Time       time.Time `json:"time"`
	Generation int       `json:"generation,omitempty"`
	Kind       string    `json:"kind"` // e.g. "started", "ready", "serving", "rollback", "crash", "restart"
	Message    string    `json:"message"`
}

// Status is the body of GET /v1/status.
type Status struct {
	Version   int        `json:"version"`
	PID       int        `json:"pid"`
	Mode      string     `json:"mode"` // "socket" or "proxy"
	Listeners []Listener `json:"listeners"`
	Serving   int        `json:"serving"` // generation number, 0 when none
	// Parked is the generation kept for rollback during the probation (0
	// when none); ProbationEnds is when the probation ends.
	Parked        int          `json:"parked"`
	ProbationEnds time.Time    `json:"probation_ends,omitzero"`
	Generations   []Generation `json:"generations"`
	Events        []Event      `json:"events"`
	Upgrading     bool         `json:"upgrading"`
}

// Listener is one public socket the supervisor owns.
type Listener struct {
	Name string `json:"name"`
	Addr string `json:"addr"` // "127.0.0.1:8080" or "unix:/path"
}

// UpgradeRequest is the body of POST /v1/upgrade. An empty Command means the
// serving generation's command line again.
type UpgradeRequest struct {
	Command []string `json:"command,omitempty"`
}

// UpgradeResult is the answer of POST /v1/upgrade and POST /v1/rollback.
// The request returns only when the new generation serves, or has been
// rolled back; in that case the status is non-2xx and the body an Error.
type UpgradeResult struct {
	Version    int     `json:"version"`
	Generation int     `json:"generation"` // the generation now serving
	Previous   int     `json:"previous"`   // the generation now parked or draining
	ReadyMS    float64 `json:"ready_ms"`   // start → ready
}
