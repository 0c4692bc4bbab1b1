package live_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graftdev/graft/live/livetest"
)

// kvClient talks to the kv child through the supervisor's listener.
type kvClient struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newKVClient(t *testing.T, addr string) *kvClient {
	return &kvClient{
		t:    t,
		base: "http://" + addr,
		// A well-behaved pool: it drops idle connections itself, so a
		// draining generation is never forced to cut one.
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 500 * time.Millisecond}},
	}
}

// cluster is a livetest supervisor running the kv child.
type cluster struct {
	*kvClient
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
	c := &cluster{kvClient: newKVClient(t, addr), sup: livetest.New(t.TempDir(), ln)}
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

func (c *kvClient) set(ctx context.Context, k, v string) error {
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/set", strings.NewReader(url.Values{"k": {k}, "v": {v}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("set %s: %s", k, resp.Status)
	}
	return nil
}

func (c *kvClient) get(path string) (string, error) {
	resp, err := c.client.Get(c.base + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GET %s: %s %s", path, resp.Status, b)
	}
	return strings.TrimSpace(string(b)), err
}

// sumOf asks the server for its key count and checksum.
func (c *kvClient) sumOf() (n int, sum string, ver int) {
	c.t.Helper()
	s, err := c.get("/sum")
	if err != nil {
		c.t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscanf(s, "%d %s %d %d", &n, &sum, &ver, &pid); err != nil {
		c.t.Fatalf("parse /sum %q: %v", s, err)
	}
	return n, sum, ver
}

// fill writes keys k0..k(n-1) and returns what was written.
func (c *kvClient) fill(n int) map[string]string {
	c.t.Helper()
	want := make(map[string]string, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				k, v := fmt.Sprintf("k%05d", i), fmt.Sprintf("v0-%d", i)
				if err := c.set(c.t.Context(), k, v); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				want[k] = v
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		c.t.Fatal(err)
	}
	return want
}

// writers rewrite keys concurrently until stop; each writer owns the keys
// i ≡ w (mod writers), so the last acknowledged value of every key is known.
type writers struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	want   map[string]string
	ok     atomic.Int64
	failed atomic.Int64
	errs   []string
}

func (c *kvClient) write(ctx context.Context, n, count int, want map[string]string) *writers {
	ws := &writers{want: want}
	for w := range count {
		ws.wg.Go(func() {
			for seq := 1; ctx.Err() == nil; seq++ {
				for i := w; i < n && ctx.Err() == nil; i += count * 37 {
					k, v := fmt.Sprintf("k%05d", i), fmt.Sprintf("v%d-%d", seq, i)
					if err := c.set(context.Background(), k, v); err != nil {
						ws.failed.Add(1)
						ws.mu.Lock()
						if len(ws.errs) < 5 {
							ws.errs = append(ws.errs, err.Error())
						}
						ws.mu.Unlock()
						continue
					}
					ws.ok.Add(1)
					ws.mu.Lock()
					ws.want[k] = v
					ws.mu.Unlock()
				}
			}
		})
	}
	return ws
}

func TestKeysSurviveUpgradesUnderWrites(t *testing.T) {
	const keys, upgrades = 10000, 50
	c := newCluster(t)
	cur := c.start()
	want := c.fill(keys)

	ctx, stop := context.WithCancel(t.Context())
	ws := c.write(ctx, keys, 4, want)
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
	ws.wg.Wait()
	if err := c.drainErrors(); err != nil {
		t.Error(err)
	}
	if f := ws.failed.Load(); f > 0 {
		t.Fatalf("%d of %d writes failed during upgrades: %v", f, f+ws.ok.Load(), ws.errs)
	}
	if ws.ok.Load() == 0 {
		t.Fatal("no writes happened during the upgrades")
	}
	n, got, _ := c.sumOf()
	if n != keys || got != sum(ws.want) {
		t.Fatalf("after %d upgrades: %d keys, checksum %s; want %d keys, checksum %s", upgrades, n, got, keys, sum(ws.want))
	}
	t.Logf("%d keys intact after %d upgrades with %d concurrent writes", n, upgrades, ws.ok.Load())
}

func TestMigrationBetweenVersions(t *testing.T) {
	c := newCluster(t)
	v1 := c.start("version=1")
	want := c.fill(100)

	// v1 → v2: Val renamed to Value, Writes added (migrated as 1).
	v2, _, err := c.sup.Upgrade(t.Context(), v1, c.cmd("version=2"))
	if err != nil {
		t.Fatal(err)
	}
	c.track(v2)
	if n, s, ver := c.sumOf(); ver != 2 || n != 100 || s != sum(want) {
		t.Fatalf("after migration: version %d, %d keys, sum %s; want version 2, 100 keys, %s", ver, n, s, sum(want))
	}
	rec, err := c.get("/get?k=k00042")
	if err != nil {
		t.Fatal(err)
	}
	if rec != `{"value":"v0-42","writes":1}` {
		t.Fatalf("migrated record = %s", rec)
	}
	if err := c.set(t.Context(), "k00042", "after"); err != nil {
		t.Fatal(err)
	}
	want["k00042"] = "after"
	if rec, _ := c.get("/get?k=k00042"); rec != `{"value":"after","writes":2}` {
		t.Fatalf("record after a v2 write = %s", rec)
	}

	// Roll back v2 → v1: v2 sends its down-migrated encoding too, so v1
	// takes back the write made under v2.
	if err := c.sup.Rollback(t.Context(), v1, v2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, s, ver := c.sumOf(); ver != 1 || n != 100 || s != sum(want) {
		t.Fatalf("after rollback: version %d, %d keys, sum %s; want version 1, 100 keys, %s", ver, n, s, sum(want))
	}
	if err := c.set(t.Context(), "k00001", "v1-again"); err != nil {
		t.Fatalf("write after rollback: %v", err)
	}
}

// Without a down migration the v1 generation cannot take v2's state back:
// it must still serve, with the state it had at the upgrade.
func TestRollbackWithoutDownMigrationResumesOldState(t *testing.T) {
	c := newCluster(t)
	v1 := c.start("version=1")
	want := c.fill(50)
	v2, _, err := c.sup.Upgrade(t.Context(), v1, c.cmd("version=2", "no-down"))
	if err != nil {
		t.Fatal(err)
	}
	c.track(v2)
	if err := c.set(t.Context(), "k00003", "lost-on-rollback"); err != nil {
		t.Fatal(err)
	}
	if err := c.sup.Rollback(t.Context(), v1, v2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := v1.Next(t.Context())
	if err != nil || m.Type != "error" || !strings.Contains(m.Error, "version 2") {
		t.Fatalf("v1 receiving v2 state without a down migration: %+v %v; want an error naming the version", m, err)
	}
	if n, s, ver := c.sumOf(); ver != 1 || n != 50 || s != sum(want) {
		t.Fatalf("after the refused rollback state: version %d, %d keys, checksum match %v; want v1 with its own state", ver, n, s == sum(want))
	}
	if err := c.set(t.Context(), "k00004", "after"); err != nil {
		t.Fatalf("write after rollback: %v", err)
	}
}

func TestFailingDecodeRollsBack(t *testing.T) {
	c := newCluster(t)
	old := c.start()
	want := c.fill(500)
	ng, _, err := c.sup.Upgrade(t.Context(), old, c.cmd("fail-decode"))
	if !errors.Is(err, livetest.ErrRolledBack) || !strings.Contains(err.Error(), "decoder rejects") {
		t.Fatalf("upgrade with a failing decoder: %v, %v; want rolled back with the decoder's reason", ng, err)
	}
	if n, s, _ := c.sumOf(); n != 500 || s != sum(want) {
		t.Fatalf("after rollback: %d keys, sum %s; want 500, %s", n, s, sum(want))
	}
	if err := c.set(t.Context(), "k00007", "resumed"); err != nil {
		t.Fatalf("write after rollback: %v", err)
	}
	want["k00007"] = "resumed"
	if _, s, _ := c.sumOf(); s != sum(want) {
		t.Fatal("write after rollback not applied")
	}
}

func TestKilledMidHandoffLeavesOldServing(t *testing.T) {
	for _, how := range []string{"block-before-reading", "stall-mid-stream"} {
		t.Run(how, func(t *testing.T) {
			c := newCluster(t)
			old := c.start()
			want := c.fill(10000)

			ctx, stop := context.WithCancel(t.Context())
			defer stop()
			ws := c.write(ctx, 10000, 2, want)
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
			ws.wg.Wait()
			if f := ws.failed.Load(); f > 0 {
				t.Fatalf("%d writes failed: %v", f, ws.errs)
			}
			if n, s, _ := c.sumOf(); n != 10000 || s != sum(ws.want) {
				t.Fatalf("old generation after a killed handoff: %d keys, sum %s; want 10000, %s", n, s, sum(ws.want))
			}
		})
	}
}
