package api

import "time"

// Seal rules: requests that crashed a generation are answered by the
// supervisor without reaching the service. See docs/heal.md for the rule
// syntax.

// SealRule is one seal rule, as listed by GET /v1/seal and
// `graft seal list --json`.
type SealRule struct {
	ID      string    `json:"id"`     // stable: derived from Match
	Match   string    `json:"match"`  // rule text: METHOD PATH [PREDICATE]...
	Action  string    `json:"action"` // "reject": answer Status without reaching the service
	Status  int       `json:"status"` // the answer's status code, default 503
	Reason  string    `json:"reason"`
	Source  string    `json:"source"` // "auto" (derived from crashes) or "manual"
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"` // zero: never
	Hits    uint64    `json:"hits"`
	LastHit time.Time `json:"last_hit,omitzero"`
}

// SealActionReject is the only action so far.
const SealActionReject = "reject"

// SealList is the body of GET /v1/seal and the output of
// `graft seal list --json`; it is also the rule store's file format.
type SealList struct {
	Version int        `json:"version"`
	Rules   []SealRule `json:"rules"`
}

// SealAddRequest is the body of POST /v1/seal.
type SealAddRequest struct {
	Match  string `json:"match"`
	Status int    `json:"status,omitempty"` // 0: the supervisor's default (503)
	Reason string `json:"reason,omitempty"`
	// TTL is a Go duration ("24h"); "" means the supervisor's default,
	// "0" means the rule never expires.
	TTL string `json:"ttl,omitempty"`
}

// SealAddResult is the answer of POST /v1/seal.
type SealAddResult struct {
	Version int      `json:"version"`
	Rule    SealRule `json:"rule"`
	Existed bool     `json:"existed"` // the same rule was already installed
}

// SealAnswer is the JSON body of the answer a sealed request gets.
type SealAnswer struct {
	Version int    `json:"version"`
	Error   string `json:"error"`
	Rule    string `json:"rule"` // the rule id
}

// Guard is one request-level latent guard (GET /v1/guards).
type Guard struct {
	ID          string            `json:"id"` // "guard.body_size", ...
	Description string            `json:"description"`
	On          bool              `json:"on"`
	Params      map[string]string `json:"params,omitempty"` // effective parameters
	Alert       string            `json:"alert,omitempty"`  // id of the alert that switched it on
	Blocked     uint64            `json:"blocked"`
}

// GuardList is the body of GET /v1/guards.
type GuardList struct {
	Version int     `json:"version"`
	Guards  []Guard `json:"guards"`
}

// GuardRequest is the body of POST /v1/guards: either a signed alert
// (verified against the supervisor's pinned key) or, from the admin socket's
// owner, ids to switch on or off directly.
type GuardRequest struct {
	Alert  *SignedAlert      `json:"alert,omitempty"`
	IDs    []string          `json:"ids,omitempty"`
	On     bool              `json:"on"`
	Params map[string]string `json:"params,omitempty"`
}
