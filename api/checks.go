package api

import "encoding/json"

// Latent checks: what `graft checks` shows and switches, and the protocol of
// an instrumented program's own admin socket (rt).

// Check is one switchable check: a latent check site compiled in by graft
// build, a patch point (Kind "point": On means sealed), or a request-level
// guard of the supervisor (Provider "guard").
type Check struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`     // make, index, slice, div, assert, depth, loop, point, or a guard's kind
	Provider string `json:"provider"` // "rt" (in the program) or the supervisor-side provider's name
	On       bool   `json:"on"`
	Limit    int64  `json:"limit,omitempty"` // 0: the kind's default
	Package  string `json:"package,omitempty"`
	Func     string `json:"func,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Point    string `json:"point,omitempty"` // sites: the enclosing function's patch point
	Patched  bool   `json:"patched,omitempty"`
}

// CheckList is GET /v1/checks and `graft checks list --json`.
type CheckList struct {
	Version int     `json:"version"`
	Checks  []Check `json:"checks"`
	// Stats of the program's rt, when one answered.
	Stopped     int64 `json:"stopped,omitempty"`      // failures stopped by switched-on sites
	SealedCalls int64 `json:"sealed_calls,omitempty"` // calls answered by sealed points
	Recovered   int64 `json:"recovered,omitempty"`    // rt errors turned into error returns
}

// ChecksSet is the body of POST /v1/checks: switch IDs (or the checks an
// alert names) on or off.
type ChecksSet struct {
	Version int          `json:"version"`
	On      bool         `json:"on"`
	IDs     []string     `json:"ids,omitempty"`
	Limit   int64        `json:"limit,omitempty"`
	Alert   *SignedAlert `json:"alert,omitempty"` // switches its checks on (with their "limit" params); needs the supervisor's pinned key
}

// ChecksResult answers POST /v1/checks.
type ChecksResult struct {
	Version int      `json:"version"`
	Changed []string `json:"changed"`           // ids switched
	Unknown []string `json:"unknown,omitempty"` // ids no provider knows
}

// RTRequest is one request line on an rt admin socket (a unix stream
// socket; one JSON object per line in each direction).
//
//	{"op":"list"}                                → RTResponse.Checks (sites and points), Patches
//	{"op":"on","ids":[...],"limit":N}            switch sites on (limit optional)
//	{"op":"off","ids":[...]}
//	{"op":"seal","ids":[...]} / {"op":"unseal","ids":[...]}
//	other ops: registered by packages linked into the program (rt.HandleOp)
type RTRequest struct {
	Op    string   `json:"op"`
	IDs   []string `json:"ids,omitempty"`
	Limit int64    `json:"limit,omitempty"`
	// Arg carries the body of ops registered with rt.HandleOp.
	Arg json.RawMessage `json:"arg,omitempty"`
}

// RTResponse is the answer line to an RTRequest.
type RTResponse struct {
	Version int        `json:"version"`
	Error   string     `json:"error,omitempty"`
	Changed []string   `json:"changed,omitempty"`
	Unknown []string   `json:"unknown,omitempty"`
	List    *CheckList `json:"list,omitempty"`
	Patches []RTPatch  `json:"patches,omitempty"`
	PID     int        `json:"pid,omitempty"`
	BuildID string     `json:"build_id,omitempty"` // the running program's graft build id (api.ManifestBuild.ID)
	// Result carries the answer of ops registered with rt.HandleOp.
	Result json.RawMessage `json:"result,omitempty"`
}

// RTPatch is one installed patch in an rt.
type RTPatch struct {
	ID    string   `json:"id"`
	Funcs []string `json:"funcs"`
}
