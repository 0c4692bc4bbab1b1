package api

// Manifest is what `graft build` writes beside the binary (OUT.graft.json)
// and `graft test` into its cache: every patch point, every function left
// without one (and why), every latent check site, and what identifies the
// build. Documented in docs/manifest.md.
type Manifest struct {
	Version int           `json:"version"`
	Build   ManifestBuild `json:"build"`
	Points  []Point       `json:"points"`
	Skipped []Skipped     `json:"skipped"`
	Sites   []Site        `json:"sites"`
}

// ManifestBuild identifies a build: two builds with the same ID were made
// from the same rewritten sources, go.mod/go.sum, toolchain, rt and flags.
type ManifestBuild struct {
	ID       string   `json:"id"`       // hex SHA-256 over everything below and the overlay's contents
	Module   string   `json:"module"`   // main module path
	Dir      string   `json:"dir"`      // the directory graft build ran in (inside the main module)
	Go       string   `json:"go"`       // toolchain: `go env GOVERSION`
	GOOS     string   `json:"goos"`     //
	GOARCH   string   `json:"goarch"`   //
	Graft    string   `json:"graft"`    // rewriter version
	RT       string   `json:"rt"`       // hash of the rt sources linked in
	Flags    []string `json:"flags"`    // go build flags passed through
	Packages []string `json:"packages"` // instrumented import paths
	// What Prepare was asked for, to reproduce the build exactly
	// (instrument.PrepareManifest). Dir above is the directory it ran in.
	Patterns   []string `json:"patterns"`
	Instrument []string `json:"instrument,omitempty"`
	Tests      bool     `json:"tests,omitempty"`
	Patchable  bool     `json:"patchable,omitempty"`
	Budget     int      `json:"budget,omitempty"`
	NoSites    bool     `json:"no_sites,omitempty"`
	Overlay    string   `json:"overlay"` // the overlay JSON file
	Modfile    string   `json:"modfile"` // the -modfile used
	Output     string   `json:"output,omitempty"`
}

// Point is one patch point: an instrumented function or method.
type Point struct {
	ID       string `json:"id"` // import path + "." + name as runtime frames print it: "example.com/m/p.(*T).M"
	Package  string `json:"package"`
	Func     string `json:"func"` // "F", "T.M", "(*T).M"
	File     string `json:"file"`
	Line     int    `json:"line"`
	EndLine  int    `json:"end_line"`
	Type     string `json:"type"`      // replacement type, receiver first: "func(*p.T, int) error"
	ErrorRet bool   `json:"error_ret"` // sealed: returns an rt error (else panics with one)
	Sites    int    `json:"sites"`
}

// Skipped is a function without a patch point.
type Skipped struct {
	ID      string `json:"id"`
	Package string `json:"package"`
	Func    string `json:"func"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	EndLine int    `json:"end_line"`
	Reason  string `json:"reason"` // "inlinable leaf (N nodes ≤ budget B)", "generic", "init", "no body", "directive //go:nosplit", ...
}

// Site is one latent check site.
type Site struct {
	ID      string `json:"id"` // Point + ":" + kind + ":" + 8 hex digits of the site's path in the function's syntax tree
	Kind    string `json:"kind"`
	Point   string `json:"point"`
	Package string `json:"package"`
	Func    string `json:"func"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
}
