package instrument

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// realModules are modules from the Go module proxy whose own test suites
// must pass under graft test, unmodified.
var realModules = []string{
	"github.com/tidwall/gjson@v1.18.0",
	"github.com/go-chi/chi/v5@v5.2.1",
	"gopkg.in/yaml.v3@v3.0.1",
}

// fetchModule downloads mod@ver with the go command and copies it out of
// the module cache into a writable directory.
func fetchModule(t *testing.T, modver string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", modver).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", modver, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %s %v", modver, info.Error, err)
	}
	dst := filepath.Join(t.TempDir(), "mod")
	err = filepath.WalkDir(info.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(info.Dir, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", modver, err)
	}
	return dst
}

// treeHash hashes every file under dir (names and contents).
func treeHash(t *testing.T, dir string) string {
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestRealModules runs each real module's own tests with its packages
// instrumented (what `graft test -mod=mod ./...` does) and requires them
// all to pass, without changing a file of the module's directory.
func TestRealModules(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: downloads 3 modules from the Go module proxy and runs their test suites (about 2-3 minutes on 2 cores)")
	}
	cache := t.TempDir()
	for _, modver := range realModules {
		t.Run(modver, func(t *testing.T) {
			dir := fetchModule(t, modver)
			before := treeHash(t, dir)
			// -mod=mod: a module zip has no go.sum for its test-only
			// requirements; graft's go.mod copy takes the sums, the
			// module directory stays untouched.
			b, err := Prepare(t.Context(), Options{Dir: dir, Patterns: []string{"./..."}, Tests: true, Flags: []string{"-mod=mod"}, CacheDir: cache})
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			if len(b.Manifest.Points) == 0 {
				t.Fatalf("no patch points in %s", modver)
			}
			cmd, err := b.Command(t.Context(), "test", nil, "-count=1", "./...")
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err = cmd.Run()
			t.Logf("%s: %d points, %d sites, %d skipped\n%s", modver, len(b.Manifest.Points), len(b.Manifest.Sites), len(b.Manifest.Skipped), out.String())
			if err != nil {
				t.Fatalf("go test on the instrumented %s failed: %v", modver, err)
			}
			if strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "ok  \t") {
				t.Errorf("unexpected go test output for %s", modver)
			}
			// Prove the tests ran against instrumented code: the overlay
			// replaces the module's files.
			if len(b.overlay) == 0 {
				t.Errorf("empty overlay for %s", modver)
			}
			if after := treeHash(t, dir); after != before {
				t.Errorf("graft test changed files in the module directory")
			}
		})
	}
}
