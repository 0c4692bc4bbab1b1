package api

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func testKey(t testing.TB, seed byte) ed25519.PrivateKey {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

func TestAlertVerify(t *testing.T) {
	now := time.Date(2026, 11, 29, 19, 0, 0, 0, time.UTC)
	priv := testKey(t, 1)
	pub := priv.Public().(ed25519.PublicKey)
	other := testKey(t, 2)
	body := AlertBody{
		ID:      "GRAFT-TEST-1",
		Issued:  now.Add(-time.Hour),
		Expires: now.Add(time.Hour),
		Reason:  "test",
		Checks:  []AlertCheck{{ID: "guard.body_size", Params: map[string]string{"max": "1024"}}},
	}
	good, err := body.Sign(priv)
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(a *SignedAlert)) *SignedAlert {
		c := *good
		f(&c)
		return &c
	}
	reencode := func(f func(b *AlertBody)) *SignedAlert {
		raw, _ := base64.StdEncoding.DecodeString(good.Body)
		var b AlertBody
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		f(&b)
		out, _ := json.Marshal(b)
		return mutate(func(a *SignedAlert) { a.Body = base64.StdEncoding.EncodeToString(out) })
	}
	expiredBody := body
	expiredBody.Expires = now.Add(-time.Minute)
	expiredBody.Issued = now.Add(-time.Hour)
	expired, err := expiredBody.Sign(priv)
	if err != nil {
		t.Fatal(err)
	}
	futureBody := body
	futureBody.Issued = now.Add(time.Hour)
	futureBody.Expires = now.Add(2 * time.Hour)
	future, err := futureBody.Sign(priv)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := body.Sign(other)
	if err != nil {
		t.Fatal(err)
	}
	// A wrong-key alert whose envelope lies about the key id is still refused.
	lying := *wrong
	lying.KeyID = KeyID(pub)

	tests := []struct {
		name  string
		alert *SignedAlert
		want  error
	}{
		{"good", good, nil},
		{"unsigned", mutate(func(a *SignedAlert) { a.Signature = "" }), ErrAlertUnsigned},
		{"tampered limit", reencode(func(b *AlertBody) { b.Checks[0].Params["max"] = "999999999" }), ErrAlertTampered},
		{"tampered expiry", reencode(func(b *AlertBody) { b.Expires = b.Expires.Add(24 * time.Hour) }), ErrAlertTampered},
		{"tampered checks", reencode(func(b *AlertBody) { b.Checks = append(b.Checks, AlertCheck{ID: "guard.header_size"}) }), ErrAlertTampered},
		{"bad signature bytes", mutate(func(a *SignedAlert) { a.Signature = "!!" }), ErrAlertTampered},
		{"wrong key", wrong, ErrAlertWrongKey},
		{"wrong key lying id", &lying, ErrAlertTampered},
		{"expired", expired, ErrAlertExpired},
		{"not yet", future, ErrAlertNotYet},
		{"version", mutate(func(a *SignedAlert) { a.Version = 2 }), ErrAlertMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.alert.Verify(pub, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if b.ID != body.ID || b.Checks[0].Params["max"] != "1024" || strings.Join(b.CheckIDs(), ",") != "guard.body_size" {
					t.Fatalf("Verify body = %+v", b)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if b != nil {
				t.Fatalf("Verify returned a body with error %v", err)
			}
		})
	}
}

func TestAlertFileRoundTrip(t *testing.T) {
	priv := testKey(t, 3)
	pub := priv.Public().(ed25519.PublicKey)
	now := time.Now()
	a, err := SignAlert(priv, AlertBody{ID: "x", Expires: now.Add(time.Hour), Checks: []AlertCheck{{ID: "guard.json_depth"}}})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.MarshalIndent(a, "", "  ")
	back, err := ParseAlert(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := back.Verify(pub, now); err != nil {
		t.Fatal(err)
	}
	pubPEM, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub2, err := ParsePublicKey(pubPEM)
	if err != nil || !pub2.Equal(pub) {
		t.Fatalf("ParsePublicKey = %v, %v", pub2, err)
	}
	priv2, err := ParsePrivateKey(privPEM)
	if err != nil || !priv2.Equal(priv) {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	if _, err := ParsePublicKey(privPEM); err == nil {
		t.Fatal("ParsePublicKey accepted a private key")
	}
	if _, err := SignAlert(priv, AlertBody{ID: "x", Checks: []AlertCheck{{ID: "a"}}}); !errors.Is(err, ErrAlertMalformed) {
		t.Fatalf("SignAlert without expiry: %v", err)
	}
}

func FuzzParseAlert(f *testing.F) {
	priv := testKey(f, 4)
	pub := priv.Public().(ed25519.PublicKey)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, _ := SignAlert(priv, AlertBody{ID: "x", Issued: now, Expires: now.Add(time.Hour), Checks: []AlertCheck{{ID: "guard.json_depth"}}})
	good, _ := json.Marshal(a)
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"key_id":"","body":"e30=","signature":"AA=="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAlert(data)
		if err != nil {
			return
		}
		b, err := a.Verify(pub, now.Add(time.Minute))
		if err == nil && string(data) != string(good) {
			// Only bytes signed by the key may verify; the envelope may be
			// re-encoded, but the body and signature must be the originals.
			var g SignedAlert
			_ = json.Unmarshal(good, &g)
			if decoded(a.Body) != decoded(g.Body) || decoded(a.Signature) != decoded(g.Signature) || b.ID != "x" {
				t.Fatalf("forged alert verified: %s", data)
			}
		}
	})
}

func decoded(s string) string {
	b, _ := base64.StdEncoding.DecodeString(s)
	return string(b)
}
