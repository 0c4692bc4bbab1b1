package patch

import (
	"context"
	"crypto/ed25519"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/client"
	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/supervisor"
)

// TestUnderSupervisor applies, lists and reverts a patch through a real
// supervisor's admin API (graft run --proxy), which forwards to the serving
// generation's rt socket.
func TestUnderSupervisor(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a server and a plugin with cgo; skipped with -short")
	}
	dir := filepath.Join(t.TempDir(), "srv")
	bin, target := e2eBuild(t, "v1", dir)
	pub, priv, _ := ed25519.GenerateKey(nil)
	so := filepath.Join(t.TempDir(), "fix.so")
	if _, err := Make(t.Context(), MakeOptions{From: dir, To: filepath.Join("testdata", "e2e", "v2"), Target: target,
		Builder: &InstrumentBuilder{Target: target}, Key: priv, Out: so}); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	run := t.TempDir()
	adminSock := filepath.Join(run, "admin.sock")
	sup, err := supervisor.New(supervisor.Options{
		Listen:  []listener.Spec{{Name: "http", Addr: addr}},
		Command: []string{bin}, Proxy: true, AdminSocket: adminSock,
		RuntimeDir: filepath.Join(run, "rt"), Output: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	Attach(sup, AttachOptions{Pub: pub})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	c := &http.Client{Timeout: 5 * time.Second}
	for i := 0; ; i++ {
		if _, sock := sup.Serving(); sock != "" {
			if got, _, err := check(c, addr, "DROP"); err == nil && got == "ok" {
				break
			}
		}
		if i == 1000 {
			t.Fatal("the first generation never served")
		}
		time.Sleep(20 * time.Millisecond)
	}
	admin := client.New(adminSock)
	info, err := admin.PatchApply(t.Context(), api.PatchApply{Version: api.Version, Artifact: so, WaitMS: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := check(c, addr, "DROP"); err != nil || got != "denied" {
		t.Fatalf("through the supervisor after the patch: %q, %v", got, err)
	}
	l, err := admin.Patches(t.Context())
	if err != nil || len(l.Patches) != 1 || l.Patches[0].ID != info.ID {
		t.Fatalf("list = %+v, %v", l, err)
	}
	if _, err := admin.PatchRevert(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := check(c, addr, "DROP"); got != "ok" {
		t.Errorf("after revert: %q", got)
	}
}
