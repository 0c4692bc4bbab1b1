package live_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/graftdev/graft/live"
	"github.com/graftdev/graft/live/livetest"
)

// The test binary doubles as the generations the tests start: with
// LIVE_ROLE set it runs a server instead of the tests.
func TestMain(m *testing.M) {
	livetest.MaybeShim()
	if cfg, ok := childConfig(os.Args); ok {
		if err := runChild(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
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
func sum(m map[string]string) string {
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
func childArgs(words ...string) []string {
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
		fmt.Fprintf(w, "%d %s %d %d\n", len(flat), sum(flat), ver, os.Getpid())
	})
	return g.Serve(ln, mux)
}
