package instrument

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateRT = flag.Bool("update-rt", false, "copy ../../rt into _rtsrc/rt")

// goSources lists the non-test .go files under dir, relative to it.
func goSources(t *testing.T, dir string) map[string][]byte {
	out := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return nil
	})
	return out
}

// TestRTSourceCurrent checks that the embedded copy of rt is the source in
// rt/ (run `go generate ./internal/instrument` after changing rt).
func TestRTSourceCurrent(t *testing.T) {
	want := goSources(t, "../../rt")
	if len(want) == 0 {
		t.Fatal("no rt sources found")
	}
	if *updateRT {
		os.RemoveAll("_rtsrc/rt")
		for name, b := range want {
			p := filepath.Join("_rtsrc/rt", name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	have := goSources(t, "_rtsrc/rt")
	if len(have) != len(want) {
		t.Errorf("embedded rt has %d files, rt/ has %d: run go generate ./internal/instrument", len(have), len(want))
	}
	for name, b := range want {
		if !bytes.Equal(have[name], b) {
			t.Errorf("embedded rt/%s is stale: run go generate ./internal/instrument", name)
		}
	}
}
