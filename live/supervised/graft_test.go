package supervised_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/supervisor"
	"github.com/graftdev/graft/live/internal/kvtest"
)

// The same must-show cases as live's process tests, under graft's real
// supervisor (internal/supervisor, what graft run runs). They live in their
// own package so that live's tests do not depend on the supervisor's.

func TestMain(m *testing.M) {
	listener.MaybeShim()
	kvtest.MaybeChild()
	os.Exit(m.Run())
}

type graftCluster struct {
	*kvtest.Client
	t   *testing.T
	s   *supervisor.Supervisor
	ctx context.Context
}

func newGraft(t *testing.T, words ...string) *graftCluster {
	t.Helper()
	spec, err := listener.Parse("web=127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var out io.Writer = io.Discard
	if os.Getenv("LIVE_DEBUG") != "" {
		out = os.Stderr
	}
	s, err := supervisor.New(supervisor.Options{
		Listen:       []listener.Spec{spec},
		Command:      kvtest.Args(words...),
		Probation:    time.Hour, // the next upgrade or a rollback ends it
		Drain:        10 * time.Second,
		StartTimeout: 30 * time.Second,
		RuntimeDir:   t.TempDir(),
		Output:       out,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	g := &graftCluster{t: t, Client: kvtest.NewClient(t, s.Addrs()[0]), s: s, ctx: ctx}
	g.waitHello()
	return g
}

// waitHello waits until the serving generation's hello (which lists its
// state) has reached the supervisor: it reads hello and READY=1 on
// different sockets, and an upgrade that starts before it has read hello
// does not hand the state over (reported to the supervisor's owner).
func (g *graftCluster) waitHello() {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(g.ctx, 30*time.Second)
	defer cancel()
	err := g.s.WaitFor(ctx, func(st *api.Status) bool {
		for _, e := range st.Events {
			if st.Serving != 0 && e.Generation == st.Serving && e.Kind == "hello" {
				return true
			}
		}
		return false
	})
	if err != nil {
		g.t.Fatal("no hello from the serving generation:", err)
	}
}

func (g *graftCluster) upgrade(words ...string) error {
	g.waitHello()
	_, err := g.s.Upgrade(g.ctx, kvtest.Args(words...))
	return err
}

func TestGraftKeysSurviveUpgradesUnderWrites(t *testing.T) {
	const keys, upgrades = 10000, 50
	g := newGraft(t)
	want := g.Fill(keys)
	ctx, stop := context.WithCancel(t.Context())
	ws := g.Write(ctx, keys, 4, want)
	for i := range upgrades {
		if err := g.upgrade(); err != nil {
			stop()
			ws.WG.Wait()
			t.Fatalf("upgrade %d: %v", i+1, err)
		}
	}
	stop()
	ws.WG.Wait()
	if f := ws.Failed.Load(); f > 0 {
		t.Fatalf("%d of %d writes failed during upgrades: %v", f, f+ws.OK.Load(), ws.Errs)
	}
	if ws.OK.Load() == 0 {
		t.Fatal("no writes happened during the upgrades")
	}
	n, got, _ := g.SumOf()
	if n != keys || got != kvtest.Sum(ws.Want) {
		t.Fatalf("after %d upgrades: %d keys, checksum %s; want %d keys, checksum %s", upgrades, n, got, keys, kvtest.Sum(ws.Want))
	}
	t.Logf("%d keys intact after %d graft upgrades with %d concurrent writes", n, upgrades, ws.OK.Load())
}

func TestGraftMigrationAndRollback(t *testing.T) {
	g := newGraft(t, "version=1")
	want := g.Fill(100)
	if err := g.upgrade("version=2"); err != nil {
		t.Fatal(err)
	}
	if n, s, ver := g.SumOf(); ver != 2 || n != 100 || s != kvtest.Sum(want) {
		t.Fatalf("after migration: version %d, %d keys; want version 2, 100 keys, same checksum", ver, n)
	}
	if rec, _ := g.Get("/get?k=k00042"); rec != `{"value":"v0-42","writes":1}` {
		t.Fatalf("migrated record = %s", rec)
	}
	if err := g.Set(t.Context(), "k00042", "under-v2"); err != nil {
		t.Fatal(err)
	}
	want["k00042"] = "under-v2"
	// graft rollback: the v2 generation hands its state back, down-migrated,
	// to the parked v1 generation.
	g.waitHello()
	res, err := g.s.Rollback(g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The v2 generation drains in the background; until it stops accepting
	// it answers reads from the state it handed back and forwards writes.
	wctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := g.s.WaitFor(wctx, func(st *api.Status) bool {
		for _, gen := range st.Generations {
			if gen.Number == res.Previous {
				return gen.State == api.GenExited
			}
		}
		return false
	}); err != nil {
		t.Fatal("rolled-back generation never exited:", err)
	}
	if n, s, ver := g.SumOf(); ver != 1 || n != 100 || s != kvtest.Sum(want) {
		t.Fatalf("after rollback: version %d, %d keys, checksum match %v; want version 1, 100 keys, the v2 write kept", ver, n, s == kvtest.Sum(want))
	}
}

func TestGraftFailingDecodeRollsBack(t *testing.T) {
	g := newGraft(t)
	want := g.Fill(500)
	err := g.upgrade("fail-decode")
	if err == nil || !strings.Contains(err.Error(), "decoder rejects") {
		t.Fatalf("upgrade to a generation whose decoder fails: %v; want the decoder's error", err)
	}
	if n, s, _ := g.SumOf(); n != 500 || s != kvtest.Sum(want) {
		t.Fatalf("after the failed upgrade: %d keys, checksum match %v; want 500 and a match", n, s == kvtest.Sum(want))
	}
	if err := g.Set(t.Context(), "k00001", "after"); err != nil {
		t.Fatalf("write after the failed upgrade: %v", err)
	}
}

func TestGraftKilledMidHandoff(t *testing.T) {
	for _, how := range []string{"block-before-reading", "stall-mid-stream"} {
		t.Run(how, func(t *testing.T) { testGraftKilledMidHandoff(t, how) })
	}
}

func testGraftKilledMidHandoff(t *testing.T, how string) {
	g := newGraft(t)
	want := g.Fill(10000)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	ws := g.Write(ctx, 10000, 2, want)

	g.waitHello()
	done := make(chan error, 1)
	go func() {
		_, err := g.s.Upgrade(g.ctx, kvtest.Args(how))
		done <- err
	}()
	// Kill the new generation once the old one has been told to hand off.
	var pid int
	wctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := g.s.WaitFor(wctx, func(st *api.Status) bool {
		handoff := false
		for _, e := range st.Events {
			handoff = handoff || e.Kind == "handoff"
		}
		for _, gen := range st.Generations {
			if gen.State == api.GenStarting && handoff {
				pid = gen.PID
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if err := <-done; err == nil {
		t.Fatal("upgrade succeeded although the new generation was killed")
	} else if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	stop()
	ws.WG.Wait()
	if f := ws.Failed.Load(); f > 0 {
		t.Fatalf("%d writes failed: %v", f, ws.Errs)
	}
	if n, s, _ := g.SumOf(); n != 10000 || s != kvtest.Sum(ws.Want) {
		t.Fatalf("old generation after a killed handoff: %d keys, checksum match %v; want 10000 and a match", n, s == kvtest.Sum(ws.Want))
	}
}
