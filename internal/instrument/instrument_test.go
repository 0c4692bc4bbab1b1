package instrument

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/rewrite"
)

// buildFixture builds testdata/NAME plain and instrumented and returns both
// binaries and the build.
func buildFixture(t *testing.T, name string) (plain, inst string, b *Build) {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("testdata", name))
	out := t.TempDir()
	plain = filepath.Join(out, "plain")
	inst = filepath.Join(out, "inst")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", plain, ".")
	cmd.Dir = dir
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("plain build: %v\n%s", err, o)
	}
	b, err := Prepare(t.Context(), Options{Dir: dir, CacheDir: filepath.Join(out, "cache")})
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	cmd, err = b.Command(t.Context(), "build", nil, "-o", inst, ".")
	if err != nil {
		t.Fatal(err)
	}
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("instrumented build: %v\n%s", err, o)
	}
	return plain, inst, b
}

func run(t *testing.T, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

var frameLine = regexp.MustCompile(`(?m)^\t(\S+\.go:\d+)`)

func TestPanicLinesIdentical(t *testing.T) {
	plain, inst, _ := buildFixture(t, "panicker")
	for _, arg := range []string{"7", "nilmap"} {
		t.Run(arg, func(t *testing.T) {
			po, pc := run(t, plain, nil, arg)
			io, ic := run(t, inst, nil, arg)
			if pc != 2 || ic != 2 {
				t.Fatalf("exit codes plain %d, instrumented %d; want 2 (panic)\n%s\n%s", pc, ic, po, io)
			}
			pl := frameLine.FindAllStringSubmatch(po, -1)
			il := frameLine.FindAllStringSubmatch(io, -1)
			if len(pl) == 0 {
				t.Fatalf("no frames in plain trace:\n%s", po)
			}
			var ps, is []string
			for _, m := range pl {
				ps = append(ps, m[1])
			}
			for _, m := range il {
				is = append(is, m[1])
			}
			if strings.Join(ps, "\n") != strings.Join(is, "\n") {
				t.Errorf("frames differ:\nplain:\n%s\ninstrumented:\n%s", strings.Join(ps, "\n"), strings.Join(is, "\n"))
			}
		})
	}
}

func TestSealedAndSites(t *testing.T) {
	_, inst, b := buildFixture(t, "panicker")
	var index, depth, leaf, nilSite string
	for _, s := range b.Manifest.Sites {
		switch {
		case s.Func == "(*node).second" && s.Kind == "nil":
			nilSite = s.ID
		case s.Func == "pick" && s.Kind == "index":
			leaf = s.ID
		case s.Func == "(*store).get" && s.Kind == "index":
			index = s.ID
		case s.Func == "nested" && s.Kind == "depth":
			depth = s.ID
		}
	}
	if index == "" || depth == "" || leaf == "" || nilSite == "" {
		t.Fatalf("manifest lacks the index site of get or the depth site of nested: %+v", b.Manifest.Sites)
	}
	tests := []struct {
		name string
		env  []string
		arg  []string
		code int
		want string
	}{
		{"dormant panics", nil, []string{"7"}, 2, "index out of range [7]"},
		{"sealed get returns an error", []string{"GRAFT_SEALED=main.(*store).get"}, []string{"7"}, 3, "error: graft: main.(*store).get is sealed"},
		{"sealed get, good input too", []string{"GRAFT_SEALED=main.(*store).get"}, []string{"1"}, 3, "is sealed"},
		{"index site on turns the panic into an error", []string{"GRAFT_SITES=" + index}, []string{"7"}, 3, "error: graft: check " + index},
		{"index site on leaves good input alone", []string{"GRAFT_SITES=" + index}, []string{"1"}, 0, "value b"},
		{"sealed function without error result panics typed", []string{"GRAFT_SEALED=main.nested"}, []string{"nilmap"}, 2, "panic: graft: main.nested is sealed"},
		{"depth limit", []string{"GRAFT_SITES=" + depth + "=2"}, []string{"nilmap"}, 2, "recursion deeper than 2"},
		{"leaf dormant panics", nil, []string{"leaf", "5"}, 2, "index out of range [5]"},
		{"nil dereference dormant", nil, []string{"nil", "x"}, 2, "nil pointer dereference"},
		{"nil site on", []string{"GRAFT_SITES=" + nilSite}, []string{"nil", "x"}, 3, "error: graft: check " + nilSite},
		{"nil site on, good input", []string{"GRAFT_SITES=" + nilSite}, []string{"nil", "link"}, 0, "value 2"},
		{"recover site in an inlinable leaf", []string{"GRAFT_SITES=" + leaf}, []string{"leaf", "5"}, 3, "error: graft: check " + leaf},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code := run(t, inst, tc.env, tc.arg...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, output:\n%s\nwant exit %d and %q", code, out, tc.code, tc.want)
			}
		})
	}
}

func TestDeterministicAndCached(t *testing.T) {
	dir, _ := filepath.Abs("testdata/panicker")
	c1, c2 := t.TempDir(), t.TempDir()
	b1, err := Prepare(t.Context(), Options{Dir: dir, CacheDir: c1})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Prepare(t.Context(), Options{Dir: dir, CacheDir: c2})
	if err != nil {
		t.Fatal(err)
	}
	if b1.Rewritten != 1 || b2.Rewritten != 1 {
		t.Errorf("cold prepares rewrote %d and %d packages, want 1", b1.Rewritten, b2.Rewritten)
	}
	if b1.Manifest.Build.ID != b2.Manifest.Build.ID {
		t.Errorf("build ids differ between identical builds: %s vs %s", b1.Manifest.Build.ID, b2.Manifest.Build.ID)
	}
	if len(b1.overlay) == 0 || len(b1.overlay) != len(b2.overlay) {
		t.Fatalf("overlays: %d and %d entries", len(b1.overlay), len(b2.overlay))
	}
	for orig, f := range b1.overlay {
		if filepath.Base(b2.overlay[orig]) != filepath.Base(f) {
			t.Errorf("rewrite of %s differs between identical builds", orig)
		}
	}
	m1, _ := json.Marshal(b1.Manifest.Points)
	m2, _ := json.Marshal(b2.Manifest.Points)
	if !bytes.Equal(m1, m2) {
		t.Error("manifests differ between identical builds")
	}
	b3, err := Prepare(t.Context(), Options{Dir: dir, CacheDir: c1})
	if err != nil {
		t.Fatal(err)
	}
	if b3.Rewritten != 0 || b3.Cached != 1 {
		t.Errorf("warm prepare rewrote %d, cached %d; want 0, 1", b3.Rewritten, b3.Cached)
	}
	if b3.Manifest.Build.ID != b1.Manifest.Build.ID {
		t.Errorf("build id changed on a warm prepare: %s vs %s", b3.Manifest.Build.ID, b1.Manifest.Build.ID)
	}
	b4, err := PrepareManifest(t.Context(), &b1.Manifest, c2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b4.Manifest.Build.ID != b1.Manifest.Build.ID {
		t.Errorf("PrepareManifest gave build %s, want %s", b4.Manifest.Build.ID, b1.Manifest.Build.ID)
	}
	b5, err := Prepare(t.Context(), Options{Dir: dir, CacheDir: c1, Rewrite: rewrite.Config{NoSites: true}})
	if err != nil {
		t.Fatal(err)
	}
	if b5.Manifest.Build.ID == b1.Manifest.Build.ID {
		t.Error("a different rewrite config gave the same build id")
	}
}

// ensure the manifest type round-trips (docs/manifest.md documents it).
var _ = api.Manifest{}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

var _ = context.Background
