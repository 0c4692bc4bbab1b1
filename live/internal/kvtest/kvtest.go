// Package kvtest is the test server live's process tests run as their
// generations (a key-value store at schema version 1 or 2, with migrations
// both ways), and the client that drives and checks it. The test binaries
// call MaybeChild first in TestMain and start generations with Args.
package kvtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graftdev/graft/live"
)

// MaybeChild runs the kv server and exits when the command line says
// live-child (see Args); otherwise it returns.
func MaybeChild() {
	cfg, ok := childConfig(os.Args)
	if !ok {
		return
	}
	if err := runChild(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Two versions of the same record: v2 renamed Val to Value and added
// Writes. The migrations are the ones a program would ship with v2.
type recV1 struct {
	Val string `json:"val"`
}

type recV2 struct {
	Value  string `json:"value"`
	Writes int    `json:"writes"`
}

func migrateUp(old []byte) ([]byte, error) {
	var in map[string]recV1
	if err := json.Unmarshal(old, &in); err != nil {
		return nil, err
	}
	out := make(map[string]recV2, len(in))
	for k, r := range in {
		out[k] = recV2{Value: r.Val, Writes: 1}
	}
	return json.Marshal(out)
}

func migrateDown(old []byte) ([]byte, error) {
	var in map[string]recV2
	if err := json.Unmarshal(old, &in); err != nil {
		return nil, err
	}
	out := make(map[string]recV1, len(in))
	for k, r := range in {
		out[k] = recV1{Val: r.Value}
	}
	return json.Marshal(out)
}

// kv is the test server's state: key → record, at the schema version the
// generation runs (LIVE_KV_VERSION).
type kv struct {
	mu      sync.Mutex
	version int
	m       map[string]recV2
}

func (s *kv) encode(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.version == 1 {
		out := make(map[string]recV1, len(s.m))
		for k, r := range s.m {
			out[k] = recV1{Val: r.Value}
		}
		return json.NewEncoder(w).Encode(out)
	}
	return json.NewEncoder(w).Encode(s.m)
}

func (s *kv) decode(r io.Reader) error {
	m := map[string]recV2{}
	if s.version == 1 {
		var in map[string]recV1
		if err := json.NewDecoder(r).Decode(&in); err != nil {
			return err
		}
		for k, v := range in {
			m[k] = recV2{Value: v.Val}
		}
	} else if err := json.NewDecoder(r).Decode(&m); err != nil {
		return err
	}
	s.mu.Lock()
	s.m = m
	s.mu.Unlock()
	return nil
}

// sum is the checksum the tests compare: sha256 over sorted key=value lines.
func Sum(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, m[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// child is what a generation started from the test binary does, given on
// its command line after the word live-child as key=value words (argv, not
// the environment, so that graft upgrade -- CMD can change it).
type child struct {
	version     int  // kv's schema version: 1 or 2
	failDecode  bool // the decoder rejects every state
	blockBefore bool // blocks before live.New: never starts reading its state
	stallStream bool // starts reading its state by hand, then stops reading
	noDown      bool // version 2 without its down migration
}

func childConfig(args []string) (child, bool) {
	c := child{version: 2}
	i := slices.Index(args, "live-child")
	if i < 0 {
		return c, false
	}
	for _, a := range args[i+1:] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "version":
			c.version, _ = strconv.Atoi(v)
		case "fail-decode":
			c.failDecode = true
		case "block-before-reading":
			c.blockBefore = true
		case "stall-mid-stream":
			c.stallStream = true
		case "no-down":
			c.noDown = true
		}
	}
	return c, true
}

// childArgs is the command line of a kv generation.
func Args(words ...string) []string {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return append([]string{self, "-test.run=^$", "live-child"}, words...)
}

func runChild(cfg child) error {
	ver := cfg.version
	if cfg.blockBefore {
		select {} // the test kills it
	}
	if cfg.stallStream {
		fd, err := strconv.Atoi(os.Getenv("GRAFT_STATE_FD"))
		if err != nil {
			return errors.New("stall-mid-stream: no GRAFT_STATE_FD")
		}
		f := os.NewFile(uintptr(fd), "state")
		f.Write([]byte{'R'}) // what live sends when it starts reading
		io.ReadFull(f, make([]byte, 4096))
		select {} // the test kills it
	}
	g := live.New(live.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	defer g.Close()
	s := &kv{version: ver, m: map[string]recV2{}}
	decode := s.decode
	if cfg.failDecode {
		decode = func(io.Reader) error { return errors.New("decoder rejects this state") }
	}
	if err := g.Register(live.Item{Name: "kv", Version: ver, Encode: s.encode, Decode: decode}); err != nil {
		return err
	}
	if ver == 2 {
		g.Migrate("kv", 1, migrateUp)
		if !cfg.noDown {
			g.MigrateDown("kv", 2, migrateDown)
		}
	}
	ln, err := g.Listen("web", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if err := g.Ready(); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /set", g.Mutating(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, v := r.FormValue("k"), r.FormValue("v")
		s.mu.Lock()
		rec := s.m[k]
		rec.Value = v
		rec.Writes++
		s.m[k] = rec
		s.mu.Unlock()
		fmt.Fprintf(w, "%d\n", os.Getpid())
	})))
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		rec, ok := s.m[r.FormValue("k")]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(rec)
	})
	mux.HandleFunc("GET /sum", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		flat := make(map[string]string, len(s.m))
		for k, r := range s.m {
			flat[k] = r.Value
		}
		s.mu.Unlock()
		fmt.Fprintf(w, "%d %s %d %d\n", len(flat), Sum(flat), ver, os.Getpid())
	})
	return g.Serve(ln, mux)
}

// Client talks to the kv child through the supervisor's listener.
type Client struct {
	t      *testing.T
	base   string
	client *http.Client
}

func NewClient(t *testing.T, addr string) *Client {
	return &Client{
		t:    t,
		base: "http://" + addr,
		// A well-behaved pool: it drops idle connections itself, so a
		// draining generation is never forced to cut one.
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 500 * time.Millisecond}},
	}
}

func (c *Client) Set(ctx context.Context, k, v string) error {
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

func (c *Client) Get(path string) (string, error) {
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
func (c *Client) SumOf() (n int, sum string, ver int) {
	c.t.Helper()
	s, err := c.Get("/sum")
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
func (c *Client) Fill(n int) map[string]string {
	c.t.Helper()
	want := make(map[string]string, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				k, v := fmt.Sprintf("k%05d", i), fmt.Sprintf("v0-%d", i)
				if err := c.Set(c.t.Context(), k, v); err != nil {
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
type Writers struct {
	WG     sync.WaitGroup
	mu     sync.Mutex
	Want   map[string]string
	OK     atomic.Int64
	Failed atomic.Int64
	Errs   []string
}

func (c *Client) Write(ctx context.Context, n, count int, want map[string]string) *Writers {
	ws := &Writers{Want: want}
	for w := range count {
		ws.WG.Go(func() {
			for seq := 1; ctx.Err() == nil; seq++ {
				for i := w; i < n && ctx.Err() == nil; i += count * 37 {
					k, v := fmt.Sprintf("k%05d", i), fmt.Sprintf("v%d-%d", seq, i)
					if err := c.Set(context.Background(), k, v); err != nil {
						ws.Failed.Add(1)
						ws.mu.Lock()
						if len(ws.Errs) < 5 {
							ws.Errs = append(ws.Errs, err.Error())
						}
						ws.mu.Unlock()
						continue
					}
					ws.OK.Add(1)
					ws.mu.Lock()
					ws.Want[k] = v
					ws.mu.Unlock()
				}
			}
		})
	}
	return ws
}
