package api

// Signed alerts: an advisory that switches latent checks on.
//
// An alert file is a JSON envelope (SignedAlert) around the exact bytes of an
// AlertBody. The body travels base64-encoded so that what was signed is a
// byte string, not a JSON value that a re-encoder could reorder or respace:
//
//	{
//	  "version": 1,
//	  "key_id": "3f2a9c0d51e6b7a8",          // KeyID of the signing key
//	  "body": "eyJ2ZXJzaW9uIjoxLCJpZCI6...",  // base64 (std) of the AlertBody JSON bytes
//	  "signature": "q1v1...=="               // base64 (std) of the ed25519 signature
//	}
//
// The signature is ed25519 over AlertDomain followed by the decoded body
// bytes. The domain prefix keeps an alert signature from being valid for any
// other message signed by the same key. The body:
//
//	{
//	  "version": 1,
//	  "id": "GRAFT-2026-0001",               // the advisory's id
//	  "key_id": "3f2a9c0d51e6b7a8",          // repeated inside what is signed
//	  "issued": "2026-11-29T19:00:00Z",
//	  "expires": "2026-12-06T19:00:00Z",     // required; refused at or after it
//	  "reason": "CVE-... crafted JSON nests 10k deep",
//	  "checks": [
//	    {"id": "guard.json_depth", "params": {"max": "64"}},
//	    {"id": "example.com/m/pkg.F#a1b2c3"}
//	  ]
//	}
//
// Check ids name what to switch on: request-level guards (internal/guard,
// ids starting "guard.") or latent check sites of a `graft build` manifest.
// Params are strings; each check parses and validates its own.
//
// Keys are PEM files: the public key as PKIX ("PUBLIC KEY"), the private key
// as PKCS #8 ("PRIVATE KEY"), both readable by openssl.

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AlertDomain prefixes the body bytes in every alert signature.
const AlertDomain = "graft-alert-v1\n"

// Reasons Verify refuses an alert with; test with errors.Is.
var (
	ErrAlertMalformed = errors.New("alert malformed")
	ErrAlertUnsigned  = errors.New("alert unsigned")
	ErrAlertWrongKey  = errors.New("alert signed by another key")
	ErrAlertTampered  = errors.New("alert signature does not match its contents")
	ErrAlertExpired   = errors.New("alert expired")
	ErrAlertNotYet    = errors.New("alert not valid yet")
)

// AlertClockSkew is how far in the future an alert's Issued time may lie
// before Verify refuses it: signer and host clocks differ a little.
const AlertClockSkew = 5 * time.Minute

// SignedAlert is the envelope stored in an alert file and sent in
// POST /v1/guards and POST /v1/checks bodies.
type SignedAlert struct {
	Version   int    `json:"version"`
	KeyID     string `json:"key_id"`
	Body      string `json:"body"`      // base64 (std) of the AlertBody JSON
	Signature string `json:"signature"` // base64 (std) of the ed25519 signature
}

// AlertBody is what an alert says; it is the signed part.
type AlertBody struct {
	Version int          `json:"version"`
	ID      string       `json:"id"`
	KeyID   string       `json:"key_id"`
	Issued  time.Time    `json:"issued"`
	Expires time.Time    `json:"expires"`
	Reason  string       `json:"reason,omitempty"`
	Checks  []AlertCheck `json:"checks"`
}

// AlertCheck names one check to switch on, with its parameters.
type AlertCheck struct {
	ID     string            `json:"id"`
	Params map[string]string `json:"params,omitempty"`
}

// CheckIDs returns the ids of the checks the alert switches on, in order.
func (b *AlertBody) CheckIDs() []string {
	ids := make([]string, len(b.Checks))
	for i, c := range b.Checks {
		ids[i] = c.ID
	}
	return ids
}

// KeyID identifies a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// SignAlert fills body's Version and KeyID, signs it with priv and returns
// the envelope. Issued defaults to now; Expires must be set.
func SignAlert(priv ed25519.PrivateKey, body AlertBody) (*SignedAlert, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign alert: private key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	pub := priv.Public().(ed25519.PublicKey)
	body.Version = Version
	body.KeyID = KeyID(pub)
	if body.Issued.IsZero() {
		body.Issued = time.Now().UTC().Truncate(time.Second)
	}
	if err := body.validate(); err != nil {
		return nil, fmt.Errorf("sign alert: %w", err)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("sign alert: encode: %w", err)
	}
	sig := ed25519.Sign(priv, signedBytes(raw))
	return &SignedAlert{
		Version:   Version,
		KeyID:     body.KeyID,
		Body:      base64.StdEncoding.EncodeToString(raw),
		Signature: base64.StdEncoding.EncodeToString(sig),
	}, nil
}

// Sign is SignAlert as a method on the body, for tools and tests.
func (b AlertBody) Sign(priv ed25519.PrivateKey) (*SignedAlert, error) { return SignAlert(priv, b) }

// ParseAlert decodes an alert file. It checks only the envelope's shape;
// call Verify before trusting anything in it.
func ParseAlert(data []byte) (*SignedAlert, error) {
	var a SignedAlert
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("parse alert: %w: %v", ErrAlertMalformed, err)
	}
	if a.Version != Version {
		return nil, fmt.Errorf("parse alert: %w: version %d, want %d", ErrAlertMalformed, a.Version, Version)
	}
	return &a, nil
}

// Verify checks that a was signed by pub, is untouched and is valid at now,
// and returns its body. Every refusal wraps one of the ErrAlert* reasons.
func (a *SignedAlert) Verify(pub ed25519.PublicKey, now time.Time) (*AlertBody, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("verify alert: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if a == nil || a.Signature == "" {
		return nil, fmt.Errorf("verify alert: %w", ErrAlertUnsigned)
	}
	if a.Version != Version {
		return nil, fmt.Errorf("verify alert: %w: version %d, want %d", ErrAlertMalformed, a.Version, Version)
	}
	want := KeyID(pub)
	if a.KeyID != want {
		return nil, fmt.Errorf("verify alert: %w: signed by key %q, pinned key is %q", ErrAlertWrongKey, a.KeyID, want)
	}
	sig, err := base64.StdEncoding.DecodeString(a.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("verify alert: %w: signature is not %d bytes of base64", ErrAlertTampered, ed25519.SignatureSize)
	}
	raw, err := base64.StdEncoding.DecodeString(a.Body)
	if err != nil {
		return nil, fmt.Errorf("verify alert: %w: body is not base64", ErrAlertTampered)
	}
	if !ed25519.Verify(pub, signedBytes(raw), sig) {
		return nil, fmt.Errorf("verify alert: %w", ErrAlertTampered)
	}
	// Signed by the pinned key from here on: what remains are the signer's
	// own mistakes and the clock.
	var body AlertBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("verify alert: %w: body: %v", ErrAlertMalformed, err)
	}
	if err := body.validate(); err != nil {
		return nil, fmt.Errorf("verify alert %s: %w", body.ID, err)
	}
	if body.KeyID != want {
		return nil, fmt.Errorf("verify alert %s: %w: body names key %q", body.ID, ErrAlertWrongKey, body.KeyID)
	}
	if !now.Before(body.Expires) {
		return nil, fmt.Errorf("verify alert %s: %w at %s", body.ID, ErrAlertExpired, body.Expires.UTC().Format(time.RFC3339))
	}
	if body.Issued.After(now.Add(AlertClockSkew)) {
		return nil, fmt.Errorf("verify alert %s: %w: issued %s", body.ID, ErrAlertNotYet, body.Issued.UTC().Format(time.RFC3339))
	}
	return &body, nil
}

func (b *AlertBody) validate() error {
	switch {
	case b.Version != Version:
		return fmt.Errorf("%w: body version %d, want %d", ErrAlertMalformed, b.Version, Version)
	case b.ID == "":
		return fmt.Errorf("%w: no id", ErrAlertMalformed)
	case b.Expires.IsZero():
		return fmt.Errorf("%w: no expiry", ErrAlertMalformed)
	case !b.Expires.After(b.Issued):
		return fmt.Errorf("%w: expires before it is issued", ErrAlertMalformed)
	case len(b.Checks) == 0:
		return fmt.Errorf("%w: switches no check on", ErrAlertMalformed)
	}
	for i, c := range b.Checks {
		if c.ID == "" {
			return fmt.Errorf("%w: check %d has no id", ErrAlertMalformed, i)
		}
	}
	return nil
}

func signedBytes(body []byte) []byte {
	return append([]byte(AlertDomain), body...)
}

// MarshalPublicKey encodes pub as a PEM "PUBLIC KEY" (PKIX) block.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKey decodes a PEM "PUBLIC KEY" block holding an ed25519 key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("parse public key: no PEM PUBLIC KEY block")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("parse public key: %T is not ed25519", k)
	}
	return pub, nil
}

// MarshalPrivateKey encodes priv as a PEM "PRIVATE KEY" (PKCS #8) block.
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey decodes a PEM "PRIVATE KEY" block holding an ed25519 key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("parse private key: no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parse private key: %T is not ed25519", k)
	}
	return priv, nil
}
