package api

import "time"

// Verdicts of a shadow run, per route and overall.
const (
	VerdictPass      = "pass"      // every route saw enough traffic with no divergence
	VerdictFail      = "fail"      // some route is divergent
	VerdictUndecided = "undecided" // not enough evidence either way yet
)

// States of a shadow run.
const (
	ShadowIdle     = "idle"     // no shadow run yet
	ShadowStarting = "starting" // lanes starting
	ShadowRunning  = "running"  // mirroring and comparing
	ShadowDone     = "done"     // ended (limit reached, verdict decided, stopped, or failed to start)
)

// ShadowRequest is the body of POST /v1/shadow: start a candidate and a
// secondary of the serving version, mirror live traffic to both, compare.
type ShadowRequest struct {
	// Command starts the candidate (the patched version), with {port} /
	// {addr} placeholders as for graft run --proxy.
	Command []string `json:"command"`
	// Secondary starts the second instance of the serving version that
	// measures noise; empty means the serving generation's command line.
	Secondary []string `json:"secondary,omitempty"`
	// Requests ends the run after this many compared requests (0: no limit).
	Requests int `json:"requests,omitempty"`
	// ForMS ends the run after this many milliseconds (0: no limit). With
	// neither limit the run ends when the verdict is decided.
	ForMS int64 `json:"for_ms,omitempty"`
	// Sample is the fraction of eligible requests mirrored, in (0, 1];
	// 0 means 1.
	Sample float64 `json:"sample,omitempty"`
	// MirrorMethods widens the methods mirrored (default GET, HEAD,
	// OPTIONS). Mirroring a side-effecting method runs its effect twice
	// more, on the candidate and on the secondary.
	MirrorMethods []string `json:"mirror_methods,omitempty"`
	// LanePriority is the CPU priority of the candidate and the secondary:
	// "idle" (the default when empty: SCHED_IDLE, or nice 19 where that is
	// refused, so mirroring only uses CPU the service leaves) or "normal".
	LanePriority string `json:"lane_priority,omitempty"`
	// Promote upgrades the service to the candidate on pass and stops it on
	// fail.
	Promote bool `json:"promote,omitempty"`
	// Routes are route templates that override inference, e.g.
	// "GET /users/{name}" or "/files/{path...}".
	Routes []string `json:"routes,omitempty"`
	// IgnoreHeaders are compared neither for noise nor divergence, in
	// addition to the defaults (see docs/shadow.md).
	IgnoreHeaders []string `json:"ignore_headers,omitempty"`
	// IgnoreFields are field paths never compared ("body.meta.took").
	IgnoreFields []string `json:"ignore_fields,omitempty"`
	// TargetRate is the regression rate a pass must rule out at 95%
	// confidence; 0 means 0.01.
	TargetRate float64 `json:"target_rate,omitempty"`
}

// Report is the body of GET /v1/report and the output of graft report --json.
type Report struct {
	Version int    `json:"version"`
	State   string `json:"state"`   // idle, starting, running, done
	Verdict string `json:"verdict"` // pass, fail, undecided
	Reason  string `json:"reason"`  // one line saying why
	// Ended says why a done run ended: "requests", "duration", "verdict",
	// "stopped", "candidate exited", "secondary exited", "worker exited",
	// "error".
	Ended     string    `json:"ended,omitempty"`
	Started   time.Time `json:"started,omitzero"`
	Finished  time.Time `json:"finished,omitzero"`
	Candidate []string  `json:"candidate,omitempty"`
	Promote   bool      `json:"promote,omitempty"`
	// Promoted says what --promote did: "upgraded to generation N",
	// "candidate stopped", or an error.
	Promoted string `json:"promoted,omitempty"`

	Requests   uint64 `json:"requests"`    // primary exchanges observed
	Eligible   uint64 `json:"eligible"`    // of those, of a mirrored method
	Mirrored   uint64 `json:"mirrored"`    // queued to both lanes
	Compared   uint64 `json:"compared"`    // with all three answers compared
	Dropped    uint64 `json:"dropped"`     // not mirrored: queue full
	Skipped    uint64 `json:"skipped"`     // not mirrored: request body over the cap, or answered by graft itself
	LaneErrors uint64 `json:"lane_errors"` // the secondary failed, so the request could not be compared

	// The statistics used; see docs/shadow.md.
	Alpha      float64 `json:"alpha"`       // family-wise significance of the divergence tests
	TargetRate float64 `json:"target_rate"` // regression rate a pass rules out
	Confidence float64 `json:"confidence"`  // of that bound

	Routes []RouteReport `json:"routes"`
}

// RouteReport is one route template's comparison.
type RouteReport struct {
	Route    string `json:"route"` // "GET /users/{id}"
	Verdict  string `json:"verdict"`
	Compared int    `json:"compared"`
	// Diffs counts compared requests whose candidate answer differed from
	// the primary's in at least one field; Noise the same for the secondary.
	Diffs     int  `json:"diffs"`
	Noise     int  `json:"noise"`
	Divergent bool `json:"divergent"`
	// Needed is the number of compared requests that rules out TargetRate
	// when none diverges.
	Needed int `json:"needed"`
	// Unexplained counts answers in which the candidate differed in a field
	// that the secondary never differed in on this route (the worst field).
	Unexplained int `json:"unexplained"`
	// Bound is the upper bound (at Confidence) on the route's regression
	// rate when no answer is unexplained; 1 otherwise.
	Bound    float64       `json:"bound"`
	Fields   []FieldReport `json:"fields"`
	Examples []Example     `json:"examples,omitempty"`
}

// FieldReport is one field path's comparison within a route. Paths are
// "status", "header.<Canonical-Name>", "body" (non-JSON bodies, or a body
// that is JSON in one answer only) and "body.<key>[<index>]...".
type FieldReport struct {
	Path  string `json:"path"`
	Diffs int    `json:"diffs"` // compared requests where candidate ≠ primary
	Noise int    `json:"noise"` // compared requests where secondary ≠ primary
	// CandidateOnly and SecondaryOnly are the discordant pairs of the
	// paired test: the field differed in one comparison of a request only.
	CandidateOnly int     `json:"candidate_only"`
	SecondaryOnly int     `json:"secondary_only"`
	P             float64 `json:"p"` // one-sided exact McNemar p-value
	Divergent     bool    `json:"divergent"`
}

// Example is one compared request with all three answers, kept as evidence
// for a field (the first few per route).
type Example struct {
	Field     string        `json:"field"`
	Method    string        `json:"method"`
	URI       string        `json:"uri"`
	Primary   ExampleAnswer `json:"primary"`
	Secondary ExampleAnswer `json:"secondary"`
	Candidate ExampleAnswer `json:"candidate"`
}

// ExampleAnswer is one answer of an Example; Body is cut to a few KiB.
type ExampleAnswer struct {
	Status int               `json:"status"`
	Error  string            `json:"error,omitempty"` // the lane failed to answer
	Header map[string]string `json:"header,omitempty"`
	Body   string            `json:"body,omitempty"`
}
