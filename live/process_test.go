package live_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftdev/graft/live/internal/kvtest"
	"github.com/graftdev/graft/live/livetest"
)

// cluster is a livetest supervisor running the kv child.
type cluster struct {
	*kvtest.Client
	t      *testing.T
	sup    *livetest.Supervisor
	mu     sync.Mutex
	gens   []*livetest.Generation
	drains sync.WaitGroup
	errs   []error
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	ln, addr, err := livetest.Listen("web")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.File.Close() })
	c := &cluster{t: t, Client: kvtest.NewClient(t, addr), sup: livetest.New(t.TempDir(), ln)}
	t.Cleanup(func() {
		c.drains.Wait()
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, g := range c.gens {
			select {
			case <-g.Exited():
			default:
				g.Kill()
			}
		}
	})
	return c
}

func (c *cluster) cmd(words ...string) *exec.Cmd {
	args := childArgs(words...)
	cmd := exec.Command(args[0], args[1:]...)
	if os.Getenv("LIVE_DEBUG") != "" {
		cmd.Stderr = os.Stderr
	}
	return cmd
}

func (c *cluster) track(g *livetest.Generation) *livetest.Generation {
	c.mu.Lock()
	c.gens = append(c.gens, g)
	c.mu.Unlock()
	return g
}

func (c *cluster) start(words ...string) *livetest.Generation {
	c.t.Helper()
	g, err := c.sup.StartFirst(c.t.Context(), c.cmd(words...))
	if err != nil {
		c.t.Fatal(err)
	}
	return c.track(g)
}

// drainLater drains a replaced generation in the background; it must exit
// cleanly.
func (c *cluster) drainLater(g *livetest.Generation) {
	c.drains.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := g.Drain(ctx, 10*time.Second); err != nil {
			c.mu.Lock()
			c.errs = append(c.errs, fmt.Errorf("drain generation %d: %w", g.N, err))
			c.mu.Unlock()
		}
	})
}

func (c *cluster) drainErrors() error {
	c.drains.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.errs...)
}

func TestKeysSurviveUpgradesUnderWrites(t *testing.T) {
	const keys, upgrades = 10000, 50
	c := newCluster(t)
	cur := c.start()
	want := c.Fill(keys)

	ctx, stop := context.WithCancel(t.Context())
	ws := c.Write(ctx, keys, 4, want)
	for i := range upgrades {
		ng, tm, err := c.sup.Upgrade(t.Context(), cur, c.cmd())
		if err != nil {
			stop()
			t.Fatalf("upgrade %d: %v", i+1, err)
		}
		c.track(ng)
		c.drainLater(cur)
		cur = ng
		if i == 0 || i == upgrades-1 {
			t.Logf("upgrade %d: %d bytes, pause %v, total %v", i+1, tm.Bytes, tm.Pause, tm.Total)
		}
	}
	stop()
	ws.WG.Wait()
	if err := c.drainErrors(); err != nil {
		t.Error(err)
	}
	if f := ws.Failed.Load(); f > 0 {
		t.Fatalf("%d of %d writes failed during upgrades: %v", f, f+ws.OK.Load(), ws.Errs)
	}
	if ws.OK.Load() == 0 {
		t.Fatal("no writes happened during the upgrades")
	}
	n, got, _ := c.SumOf()
	if n != keys || got != sum(ws.Want) {
		t.Fatalf("after %d upgrades: %d keys, checksum %s; want %d keys, checksum %s", upgrades, n, got, keys, sum(ws.Want))
	}
	t.Logf("%d keys intact after %d upgrades with %d concurrent writes", n, upgrades, ws.OK.Load())
}

func TestMigrationBetweenVersions(t *testing.T) {
	c := newCluster(t)
	v1 := c.start("version=1")
	want := c.Fill(100)

	// v1 → v2: Val renamed to Value, Writes added (migrated as 1).
	v2, _, err := c.sup.Upgrade(t.Context(), v1, c.cmd("version=2"))
	if err != nil {
		t.Fatal(err)
	}
	c.track(v2)
	if n, s, ver := c.SumOf(); ver != 2 || n != 100 || s != sum(want) {
		t.Fatalf("after migration: version %d, %d keys, sum %s; want version 2, 100 keys, %s", ver, n, s, sum(want))
	}
	rec, err := c.Get("/get?k=k00042")
	if err != nil {
		t.Fatal(err)
	}
	if rec != `{"value":"v0-42","writes":1}` {
		t.Fatalf("migrated record = %s", rec)
	}
	if err := c.Set(t.Context(), "k00042", "after"); err != nil {
		t.Fatal(err)
	}
	want["k00042"] = "after"
	if rec, _ := c.Get("/get?k=k00042"); rec != `{"value":"after","writes":2}` {
		t.Fatalf("record after a v2 write = %s", rec)
	}

	// Roll back v2 → v1: v2 sends its down-migrated encoding too, so v1
	// takes back the write made under v2.
	if err := c.sup.Rollback(t.Context(), v1, v2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, s, ver := c.SumOf(); ver != 1 || n != 100 || s != sum(want) {
		t.Fatalf("after rollback: version %d, %d keys, sum %s; want version 1, 100 keys, %s", ver, n, s, sum(want))
	}
	if err := c.Set(t.Context(), "k00001", "v1-again"); err != nil {
		t.Fatalf("write after rollback: %v", err)
	}
}

// Without a down migration the v1 generation cannot take v2's state back:
// it must still serve, with the state it had at the upgrade.
func TestRollbackWithoutDownMigrationResumesOldState(t *testing.T) {
	c := newCluster(t)
	v1 := c.start("version=1")
	want := c.Fill(50)
	v2, _, err := c.sup.Upgrade(t.Context(), v1, c.cmd("version=2", "no-down"))
	if err != nil {
		t.Fatal(err)
	}
	c.track(v2)
	if err := c.Set(t.Context(), "k00003", "lost-on-rollback"); err != nil {
		t.Fatal(err)
	}
	if err := c.sup.Rollback(t.Context(), v1, v2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := v1.Next(t.Context())
	if err != nil || m.Type != "error" || !strings.Contains(m.Error, "version 2") {
		t.Fatalf("v1 receiving v2 state without a down migration: %+v %v; want an error naming the version", m, err)
	}
	if n, s, ver := c.SumOf(); ver != 1 || n != 50 || s != sum(want) {
		t.Fatalf("after the refused rollback state: version %d, %d keys, checksum match %v; want v1 with its own state", ver, n, s == sum(want))
	}
	if err := c.Set(t.Context(), "k00004", "after"); err != nil {
		t.Fatalf("write after rollback: %v", err)
	}
}

func TestFailingDecodeRollsBack(t *testing.T) {
	c := newCluster(t)
	old := c.start()
	want := c.Fill(500)
	ng, _, err := c.sup.Upgrade(t.Context(), old, c.cmd("fail-decode"))
	if !errors.Is(err, livetest.ErrRolledBack) || !strings.Contains(err.Error(), "decoder rejects") {
		t.Fatalf("upgrade with a failing decoder: %v, %v; want rolled back with the decoder's reason", ng, err)
	}
	if n, s, _ := c.SumOf(); n != 500 || s != sum(want) {
		t.Fatalf("after rollback: %d keys, sum %s; want 500, %s", n, s, sum(want))
	}
	if err := c.Set(t.Context(), "k00007", "resumed"); err != nil {
		t.Fatalf("write after rollback: %v", err)
	}
	want["k00007"] = "resumed"
	if _, s, _ := c.SumOf(); s != sum(want) {
		t.Fatal("write after rollback not applied")
	}
}

func TestKilledMidHandoffLeavesOldServing(t *testing.T) {
	for _, how := range []string{"block-before-reading", "stall-mid-stream"} {
		t.Run(how, func(t *testing.T) {
			c := newCluster(t)
			old := c.start()
			want := c.Fill(10000)

			ctx, stop := context.WithCancel(t.Context())
			defer stop()
			ws := c.Write(ctx, 10000, 2, want)
			r, w, err := osPipeSocket()
			if err != nil {
				t.Fatal(err)
			}
			ng, err := c.sup.Start(c.cmd(how), r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			c.track(ng)
			if err := old.Send(handoffMsg(), w); err != nil {
				t.Fatal(err)
			}
			w.Close()
			ng.Kill()
			// The old generation either notices (its write or wait fails:
			// error) or has already written everything (handoff-sent); in
			// both cases the supervisor resumes it.
			m, err := old.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != "error" && m.Type != "handoff-sent" {
				t.Fatalf("old generation answered %q to a handoff whose reader died", m.Type)
			}
			if err := old.Send(resumeMsg(), nil); err != nil {
				t.Fatal(err)
			}
			stop()
			ws.WG.Wait()
			if f := ws.Failed.Load(); f > 0 {
				t.Fatalf("%d writes failed: %v", f, ws.Errs)
			}
			if n, s, _ := c.SumOf(); n != 10000 || s != sum(ws.Want) {
				t.Fatalf("old generation after a killed handoff: %d keys, sum %s; want 10000, %s", n, s, sum(ws.Want))
			}
		})
	}
}
