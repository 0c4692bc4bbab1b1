package patch

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/instrument"
)

// e2eBuild builds testdata/e2e/NAME (copied to dir) with graft build
// --patchable (rt/rtplugin loads plugins), returning the binary and its
// manifest.
func e2eBuild(t *testing.T, name, dir string) (string, *api.Manifest) {
	t.Helper()
	if err := instrument.CopyTree(filepath.Join("testdata", "e2e", name), dir, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := instrument.Prepare(t.Context(), instrument.Options{Dir: dir, Patterns: []string{"./..."}, Patchable: true})
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), name)
	cmd, err := b.Command(t.Context(), "build", nil, "-o", bin, ".")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(cmd.Env, "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin, &b.Manifest
}

type server struct {
	cmd  *exec.Cmd
	addr string
	sock string
}

func startServer(t *testing.T, bin string) *server {
	t.Helper()
	s := &server{sock: filepath.Join(t.TempDir(), "rt.sock")}
	s.cmd = exec.Command(bin)
	s.cmd.Env = append(os.Environ(), "GRAFT_RT_SOCKET="+s.sock)
	s.cmd.Stderr = os.Stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("server said nothing: %v", err)
	}
	s.addr = strings.TrimSpace(strings.TrimPrefix(line, "addr "))
	go io.Copy(io.Discard, out)
	// The rt socket is served from the program's init; wait until it answers.
	for i := 0; ; i++ {
		if _, err := List(t.Context(), s.sock); err == nil {
			break
		} else if i == 500 {
			t.Fatalf("rt socket never answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

func check(c *http.Client, addr, s string) (string, string, error) {
	resp, err := c.Get("http://" + addr + "/check?s=" + s)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), resp.Header.Get("X-Pid"), err
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a server and plugins with cgo; skipped with -short")
	}
	dir := filepath.Join(t.TempDir(), "srv")
	bin, target := e2eBuild(t, "v1", dir)
	pub, priv, _ := ed25519.GenerateKey(nil)
	srv := startServer(t, bin)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
	if got, _, err := check(c, srv.addr, "DROP"); err != nil || got != "ok" {
		t.Fatalf("before the patch: %q, %v (the bug: DROP gets through)", got, err)
	}

	// Load during everything that follows: bounded in count and time.
	ctx, stop := context.WithTimeout(t.Context(), 2*time.Minute)
	var sent, failed atomic.Int64
	var pids sync.Map
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200000 && ctx.Err() == nil; i++ {
				_, pid, err := check(c, srv.addr, "hello")
				sent.Add(1)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				pids.Store(pid, true)
			}
		}()
	}

	so := filepath.Join(t.TempDir(), "fix.so")
	a, err := Make(t.Context(), MakeOptions{From: dir, To: filepath.Join("testdata", "e2e", "v2"), Target: target,
		Builder: &InstrumentBuilder{Target: target}, Key: priv, Out: so})
	if err != nil {
		if a != nil && a.Report != nil {
			t.Logf("%+v", a.Report.Changes)
		}
		t.Fatal(err)
	}
	t.Logf("patch %s: slots %v; load %v diff %v gen %v build %v", a.Manifest.ID, a.Manifest.Slots, a.LoadDur, a.DiffDur, a.GenDur, a.BuildDur)

	t.Run("tampered", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.so")
		copyArtifact(t, so, bad)
		b, _ := os.ReadFile(bad)
		b[len(b)/2] ^= 0xff
		os.WriteFile(bad, b, 0o644)
		if _, err := Apply(t.Context(), srv.sock, bad, ApplyOptions{Pub: pub, BuildID: target.Build.ID}); !errors.Is(err, ErrPluginModified) {
			t.Fatalf("err = %v, want %v", err, ErrPluginModified)
		}
	})
	t.Run("another build", func(t *testing.T) {
		odir := filepath.Join(t.TempDir(), "srv")
		_, other := e2eBuild(t, "other", odir)
		oso := filepath.Join(t.TempDir(), "other.so")
		if _, err := Make(t.Context(), MakeOptions{From: odir, To: filepath.Join("testdata", "e2e", "v2"), Target: other,
			Builder: &InstrumentBuilder{Target: other}, Key: priv, Out: oso}); err != nil {
			t.Fatal(err)
		}
		// No BuildID given: Apply asks the running program for its own.
		if _, err := Apply(t.Context(), srv.sock, oso, ApplyOptions{Pub: pub}); !errors.Is(err, ErrWrongBuild) {
			t.Fatalf("err = %v, want %v", err, ErrWrongBuild)
		}
	})

	t.Run("init panics", func(t *testing.T) {
		// The new variable's initializer panics: the generated plugin runs it
		// in GraftInit, which turns the panic into an error before any slot
		// is touched.
		pso := filepath.Join(t.TempDir(), "panic.so")
		if _, err := Make(t.Context(), MakeOptions{From: dir, To: filepath.Join("testdata", "e2e", "v3"), Target: target,
			Builder: &InstrumentBuilder{Target: target}, Key: priv, Out: pso}); err != nil {
			t.Fatal(err)
		}
		_, err := Apply(t.Context(), srv.sock, pso, ApplyOptions{Pub: pub, BuildID: target.Build.ID})
		if !errors.Is(err, ErrRT) || !strings.Contains(err.Error(), "guard: no words") {
			t.Fatalf("err = %v, want rt's refusal naming the panic", err)
		}
		if got, _, err := check(c, srv.addr, "DROP"); err != nil || got != "ok" {
			t.Fatalf("after the refused patch: %q, %v, want the program unchanged", got, err)
		}
		if l, err := List(t.Context(), srv.sock); err != nil || len(l.Patches) != 0 {
			t.Fatalf("list = %+v, %v, want nothing installed", l, err)
		}
	})

	info, err := Apply(t.Context(), srv.sock, so, ApplyOptions{Pub: pub, BuildID: target.Build.ID, Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("installed %s in %.2f ms (safe point)", info.ID, info.SafePointMS)
	if got, _, err := check(c, srv.addr, "DROP"); err != nil || got != "denied" {
		t.Fatalf("after the patch: %q, %v, want denied", got, err)
	}
	if got, _, _ := check(c, srv.addr, "drop"); got != "denied" {
		t.Errorf("old rule lost: drop → %q", got)
	}
	l, err := List(t.Context(), srv.sock)
	if err != nil || len(l.Patches) != 1 || l.Patches[0].ID != info.ID {
		t.Fatalf("list = %+v, %v", l, err)
	}
	if _, err := Revert(t.Context(), srv.sock, info.ID); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := check(c, srv.addr, "DROP"); got != "ok" {
		t.Errorf("after revert: DROP → %q, want the old behaviour", got)
	}
	stop()
	wg.Wait()
	n := 0
	pids.Range(func(k, _ any) bool { n++; return true })
	t.Logf("load: %d requests, %d failed, pids seen %d", sent.Load(), failed.Load(), n)
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during make/apply/revert", failed.Load(), sent.Load())
	}
	if n != 1 {
		t.Errorf("requests were answered by %d processes, want 1 (same pid)", n)
	}
	if sent.Load() == 0 {
		t.Error("no load was sent")
	}
}
