package scenario

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/client"
	"github.com/graftdev/graft/internal/cli"
)

func seedKey(b byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = b
	}
	return ed25519.NewKeyFromSeed(s)
}

// TestAdminAPI drives /v1/seal and /v1/guards of a real supervisor through
// the admin client and the CLI: hand-added rules seal, rm unseals, and
// alerts are refused (unsigned, tampered, wrong key, expired) with the
// reason or switch a guard on.
func TestAdminAPI(t *testing.T) {
	priv := seedKey(7)
	cfg := config(t, NilMap)
	cfg.AdminSocket = filepath.Join(t.TempDir(), "admin.sock")
	cfg.AlertKey = priv.Public().(ed25519.PublicKey)
	s, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c := client.New(cfg.AdminSocket)
	ctx := t.Context()
	hc := Client()

	probe := Request{Method: "GET", Path: "/items/5?debug=1"}
	if o := Do(ctx, hc, s.URL, probe); o.Status != 200 {
		t.Fatalf("before the rule: %+v", o)
	}
	add, err := c.SealAdd(ctx, api.SealAddRequest{Match: "GET /items/{} query.debug=1", Reason: "by hand", TTL: "1h", Status: 429})
	if err != nil || add.Existed || add.Rule.Source != "manual" || add.Rule.Status != 429 {
		t.Fatalf("SealAdd = %+v, %v", add, err)
	}
	if _, err := c.SealAdd(ctx, api.SealAddRequest{Match: "GET /x nonsense.here"}); err == nil || !strings.Contains(err.Error(), "unknown subject") {
		t.Fatalf("bad rule: %v", err)
	}
	if o := Do(ctx, hc, s.URL, probe); o.Status != 429 || o.Rule != add.Rule.ID {
		t.Fatalf("sealed probe: %+v", o)
	}
	if o := Do(ctx, hc, s.URL, Request{Method: "GET", Path: "/items/5"}); o.Status != 200 {
		t.Fatalf("neighbour of the rule: %+v", o)
	}

	// The CLI's JSON list: versioned, with the contract's fields.
	var out, errOut bytes.Buffer
	if err := cli.Run(ctx, []string{"seal", "list", "--admin", cfg.AdminSocket, "--json"}, &out, &errOut); err != nil {
		t.Fatalf("graft seal list: %v %s", err, errOut.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc["version"] != float64(1) {
		t.Fatalf("seal list --json: %s", out.String())
	}
	rules := doc["rules"].([]any)
	r0 := rules[0].(map[string]any)
	for _, k := range []string{"id", "match", "action", "reason", "created", "hits"} {
		if _, ok := r0[k]; !ok {
			t.Errorf("seal list --json rule lacks %q: %v", k, r0)
		}
	}
	if r0["hits"] != float64(1) {
		t.Errorf("hits = %v, want 1", r0["hits"])
	}
	out.Reset()
	if err := cli.Run(ctx, []string{"seal", "rm", "--admin", cfg.AdminSocket, add.Rule.ID}, &out, &errOut); err != nil {
		t.Fatalf("graft seal rm: %v", err)
	}
	if o := Do(ctx, hc, s.URL, probe); o.Status != 200 {
		t.Fatalf("after rm: %+v", o)
	}
	if err := c.SealRemove(ctx, add.Rule.ID); err == nil {
		t.Fatal("removing twice succeeded")
	}

	// Alerts through the admin API.
	now := time.Now()
	body := api.AlertBody{ID: "T-ALERT", Expires: now.Add(time.Hour), Checks: []api.AlertCheck{{ID: "guard.json_depth", Params: map[string]string{"max": "4"}}}}
	good, _ := body.Sign(priv)
	wrong, _ := body.Sign(seedKey(8))
	old := body
	old.Issued, old.Expires = now.Add(-2*time.Hour), now.Add(-time.Hour)
	expired, _ := old.Sign(priv)
	unsigned := *good
	unsigned.Signature = ""
	tampered := *good
	tampered.Body = strings.Replace(tampered.Body, "A", "B", 1)
	deep := Request{Method: "POST", Path: "/items/1", Body: `{"name":"x","tags":{"a":"b"},"labels":[],"n":[[[[[1]]]]]}`}
	for _, tc := range []struct {
		name  string
		alert *api.SignedAlert
		why   string
	}{
		{"unsigned", &unsigned, "unsigned"},
		{"tampered", &tampered, ""},
		{"wrong key", wrong, "another key"},
		{"expired", expired, "expired"},
	} {
		_, err := c.SetGuards(ctx, api.GuardRequest{Alert: tc.alert})
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, tc.why) {
			t.Errorf("%s alert: %v", tc.name, err)
		}
		if o := Do(ctx, hc, s.URL, deep); o.Status != 200 {
			t.Errorf("%s alert switched a guard on: %+v", tc.name, o)
		}
	}
	gl, err := c.SetGuards(ctx, api.GuardRequest{Alert: good})
	if err != nil {
		t.Fatal(err)
	}
	var on []string
	for _, g := range gl.Guards {
		if g.On {
			on = append(on, g.ID+"@"+g.Alert)
		}
	}
	if strings.Join(on, ",") != "guard.json_depth@T-ALERT" {
		t.Fatalf("guards on after the alert: %v", on)
	}
	if o := Do(ctx, hc, s.URL, deep); o.Status != 400 || o.Rule != "guard.json_depth" {
		t.Fatalf("deep JSON with the guard on: %+v", o)
	}
	if o := Do(ctx, hc, s.URL, Next(NilMap, 0, 2, 0)); o.Status != 200 {
		t.Fatalf("ordinary POST with the guard on: %+v", o)
	}
	if _, err := c.SetGuards(ctx, api.GuardRequest{IDs: []string{"guard.json_depth"}, On: false}); err != nil {
		t.Fatal(err)
	}
	if o := Do(ctx, hc, s.URL, deep); o.Status != 200 {
		t.Fatalf("deep JSON after off: %+v", o)
	}
}
