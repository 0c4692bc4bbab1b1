package api

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// In-process patches (graft patch). See docs/patch.md.

// Kinds of objects a patch report talks about.
const (
	PatchFunc   = "func"   // function or method
	PatchType   = "type"   // named type
	PatchVar    = "var"    // package-level variable
	PatchConst  = "const"  // package-level constant
	PatchInit   = "init"   // a package's init functions, as one unit
	PatchCaller = "caller" // unchanged function recompiled because a callee has no patch point
)

// Kinds of change.
const (
	Changed = "changed"
	Added   = "added"
	Removed = "removed"
)

// PatchReport is what graft patch make decides (printed with --json).
type PatchReport struct {
	Version  int           `json:"version"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	Admitted bool          `json:"admitted"` // every change admitted and at least one slot to install
	Changes  []PatchChange `json:"changes"`
	// Slots are the patch points the patch would fill (changed functions and
	// the callers recompiled in their place).
	Slots []string `json:"slots"`
}

// PatchChange is one changed, added or removed object and the verdict on it.
type PatchChange struct {
	ID       string `json:"id"`   // pkgpath.Name, pkgpath.(*T).M, pkgpath.T.M, pkgpath.init
	Kind     string `json:"kind"` // PatchFunc, PatchType, ...
	Change   string `json:"change"`
	Admitted bool   `json:"admitted"`
	// Reason says why it was refused, or how an admitted change travels.
	Reason string `json:"reason"`
}

// PatchManifest names the build a patch fits and every slot it replaces.
// It travels beside the plugin and is what the signature covers.
type PatchManifest struct {
	Version int           `json:"version"`
	ID      string        `json:"id"`       // unique; also the plugin's package path suffix
	Plugin  string        `json:"plugin"`   // the plugin's package path
	BuildID string        `json:"build_id"` // the target build (manifest of graft build)
	SHA256  string        `json:"sha256"`   // of the plugin file
	Slots   []string      `json:"slots"`    // patch point ids the plugin replaces
	PerCall bool          `json:"per_call"` // keeps state invariants: no safe point needed
	Created time.Time     `json:"created"`  //
	From    string        `json:"from"`     // source versions, informational
	To      string        `json:"to"`       //
	Changes []PatchChange `json:"changes,omitempty"`
}

// SignedPatch is the manifest file written beside a plugin. It follows the
// alert envelope (api/alert.go): the manifest travels as base64 of its exact
// JSON bytes, signed with ed25519 over PatchDomain followed by those bytes,
// with the same key ids and PEM keys as alerts.
type SignedPatch struct {
	Version   int    `json:"version"`
	KeyID     string `json:"key_id"`
	Body      string `json:"body"`      // base64 (std) of the PatchManifest JSON
	Signature string `json:"signature"` // base64 (std) of the ed25519 signature
}

// PatchDomain prefixes the manifest bytes in every patch signature, so that a
// patch signature is never valid as an alert signature and back.
const PatchDomain = "graft-patch-v1\n"

// SignPatch signs m with priv.
func SignPatch(priv ed25519.PrivateKey, m PatchManifest) (*SignedPatch, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign patch: private key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	m.Version = Version
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("sign patch: encode: %w", err)
	}
	sig := ed25519.Sign(priv, append([]byte(PatchDomain), raw...))
	return &SignedPatch{
		Version:   Version,
		KeyID:     KeyID(priv.Public().(ed25519.PublicKey)),
		Body:      base64.StdEncoding.EncodeToString(raw),
		Signature: base64.StdEncoding.EncodeToString(sig),
	}, nil
}

// Reasons VerifyPatch refuses a signed manifest; test with errors.Is.
var (
	ErrPatchMalformed = errors.New("patch manifest malformed")
	ErrPatchUnsigned  = errors.New("patch unsigned")
	ErrPatchWrongKey  = errors.New("patch signed by another key")
	ErrPatchTampered  = errors.New("patch signature does not match its manifest")
)

// VerifyPatch checks that s was signed by pub and is untouched, and returns
// the manifest. Standard library only, so rt can verify in-process too.
func (s *SignedPatch) Verify(pub ed25519.PublicKey) (*PatchManifest, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("verify patch: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if s == nil || s.Signature == "" {
		return nil, fmt.Errorf("verify patch: %w", ErrPatchUnsigned)
	}
	if s.Version != Version {
		return nil, fmt.Errorf("verify patch: %w: version %d, want %d", ErrPatchMalformed, s.Version, Version)
	}
	if want := KeyID(pub); s.KeyID != want {
		return nil, fmt.Errorf("verify patch: %w: signed by key %q, pinned key is %q", ErrPatchWrongKey, s.KeyID, want)
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("verify patch: %w: signature is not %d bytes of base64", ErrPatchTampered, ed25519.SignatureSize)
	}
	raw, err := base64.StdEncoding.DecodeString(s.Body)
	if err != nil {
		return nil, fmt.Errorf("verify patch: %w: body is not base64", ErrPatchTampered)
	}
	if !ed25519.Verify(pub, append([]byte(PatchDomain), raw...), sig) {
		return nil, fmt.Errorf("verify patch: %w", ErrPatchTampered)
	}
	var m PatchManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("verify patch: %w: manifest: %v", ErrPatchMalformed, err)
	}
	if m.ID == "" || m.SHA256 == "" || len(m.Slots) == 0 {
		return nil, fmt.Errorf("verify patch: %w: manifest needs id, sha256 and slots", ErrPatchMalformed)
	}
	return &m, nil
}

// PatchApply is the body of POST /v1/patches (supervisor and rt admin API).
type PatchApply struct {
	Version  int         `json:"version"`
	Artifact string      `json:"artifact"` // absolute path of the plugin (.so) on the target's host
	Signed   SignedPatch `json:"signed"`
	WaitMS   int64       `json:"wait_ms,omitempty"` // bound on the wait for a safe point
}

// PatchInfo describes one installed patch.
type PatchInfo struct {
	Version   int       `json:"version"`
	ID        string    `json:"id"`
	Slots     []string  `json:"slots"`
	Installed time.Time `json:"installed,omitzero"`
	Reverted  bool      `json:"reverted,omitempty"`
	// SafePointMS is how long the wait for a safe point took.
	SafePointMS float64 `json:"safe_point_ms,omitempty"`
}

// PatchList is the answer of GET /v1/patches.
type PatchList struct {
	Version int         `json:"version"`
	Patches []PatchInfo `json:"patches"`
}
