package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
)

// TestCountUnderGraftRun runs the real binaries: `graft run` supervising
// the counter on a unix socket, `graft upgrade` repeated under /incr load.
func TestCountUnderGraftRun(t *testing.T) {
	const upgrades = 10
	bin := counterBin(t)
	graft := filepath.Join(filepath.Dir(bin), "graft")
	if out, err := exec.Command("go", "build", "-o", graft, "github.com/graftdev/graft/cmd/graft").CombinedOutput(); err != nil {
		t.Fatalf("build graft: %v\n%s", err, out)
	}
	dir := t.TempDir()
	admin, sock := filepath.Join(dir, "admin.sock"), filepath.Join(dir, "web.sock")
	run := exec.Command(graft, "run", "--admin", admin, "--listen", "web=unix:"+sock,
		"--probation", "1h", "--drain", "10s", "--", bin)
	if os.Getenv("LIVE_DEBUG") != "" {
		run.Stdout, run.Stderr = os.Stderr, os.Stderr
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		run.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- run.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			run.Process.Kill()
			t.Error("graft run did not stop within 30s of SIGINT")
		}
	}()

	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
	base := "http://counter"
	probe := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	// graft run returns nothing to wait on: poll until the first generation answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := probe.Get(base + "/count")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("counter under graft run never answered:", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	ctx, stop := context.WithCancel(t.Context())
	l := startLoadWith(ctx, base, 8, dial)
	for i := range upgrades {
		out, err := exec.Command(graft, "upgrade", "--admin", admin).CombinedOutput()
		if err != nil {
			stop()
			l.wg.Wait()
			t.Fatalf("graft upgrade %d: %v\n%s", i+1, err, out)
		}
		// See TestCountSurvivesGraftUpgrades: give the supervisor the new
		// generation's hello before the next upgrade.
		waitHello(t, graft, admin)
	}
	stop()
	l.wg.Wait()
	check(t, l, countVia(t, probe, base), upgrades)
}

// waitHello polls graft status until the serving generation's hello shows.
func waitHello(t *testing.T, graft, admin string) {
	t.Helper()
	for range 1000 {
		out, err := exec.Command(graft, "status", "--admin", admin, "--json").Output()
		var st api.Status
		if err == nil && json.Unmarshal(out, &st) == nil && helloSeen(&st, st.Serving) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no hello from the serving generation in graft status")
}
