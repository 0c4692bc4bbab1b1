package patch

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"

	"github.com/graftdev/graft/api"
)

// FuzzVerifyManifest feeds arbitrary manifest files to the verifier: it
// must never panic, and must accept nothing that the pinned key did not sign.
func FuzzVerifyManifest(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := seed.Public().(ed25519.PublicKey)
	s, err := api.SignPatch(seed, api.PatchManifest{ID: "p1", SHA256: "00", Slots: []string{"a.f"}})
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(s)
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1,"key_id":"x","body":"e30=","signature":"AAAA"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var sp api.SignedPatch
		if json.Unmarshal(data, &sp) != nil {
			return
		}
		m, err := sp.Verify(pub)
		if err != nil {
			if !errors.Is(err, api.ErrPatchUnsigned) && !errors.Is(err, api.ErrPatchWrongKey) &&
				!errors.Is(err, api.ErrPatchTampered) && !errors.Is(err, api.ErrPatchMalformed) {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		// Accepted: it must be exactly what was signed.
		if m.ID != "p1" || m.SHA256 != "00" || len(m.Slots) != 1 {
			t.Fatalf("accepted a manifest the key did not sign: %+v", m)
		}
	})
}
