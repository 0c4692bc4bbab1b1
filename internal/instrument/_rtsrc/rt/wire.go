package rt

import "encoding/json"

// The admin socket's wire types. They mirror api.RTRequest, api.RTResponse,
// api.CheckList and api.Check field for field (same JSON), so that rt
// depends on nothing but the standard library and graft can embed rt's
// source alone; internal/checks tests that the two agree.

const wireVersion = 1

// Request is one request line (api.RTRequest).
type Request struct {
	Op    string          `json:"op"`
	IDs   []string        `json:"ids,omitempty"`
	Limit int64           `json:"limit,omitempty"`
	Arg   json.RawMessage `json:"arg,omitempty"`
}

// Response is one answer line (api.RTResponse).
type Response struct {
	Version int             `json:"version"`
	Error   string          `json:"error,omitempty"`
	Changed []string        `json:"changed,omitempty"`
	Unknown []string        `json:"unknown,omitempty"`
	List    *CheckList      `json:"list,omitempty"`
	Patches []PatchInfo     `json:"patches,omitempty"`
	PID     int             `json:"pid,omitempty"`
	BuildID string          `json:"build_id,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
}

// PatchInfo is one installed patch (api.RTPatch).
type PatchInfo struct {
	ID    string   `json:"id"`
	Funcs []string `json:"funcs"`
}

// CheckList lists checks (api.CheckList).
type CheckList struct {
	Version     int     `json:"version"`
	Checks      []Check `json:"checks"`
	Stopped     int64   `json:"stopped,omitempty"`
	SealedCalls int64   `json:"sealed_calls,omitempty"`
	Recovered   int64   `json:"recovered,omitempty"`
}

// Check is one site or point (api.Check).
type Check struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Provider string `json:"provider"`
	On       bool   `json:"on"`
	Limit    int64  `json:"limit,omitempty"`
	Package  string `json:"package,omitempty"`
	Func     string `json:"func,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Point    string `json:"point,omitempty"`
	Patched  bool   `json:"patched,omitempty"`
}
