package instrument

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateRT = flag.Bool("update-rt", false, "copy ../../rt into _rtsrc/rt")

// TestRTSourceCurrent checks that the embedded copy of rt is the source in
// rt/ (run `go generate ./internal/instrument` after changing rt).
func TestRTSourceCurrent(t *testing.T) {
	src, _ := filepath.Glob("../../rt/*.go")
	want := map[string][]byte{}
	for _, f := range src {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want[filepath.Base(f)] = b
	}
	if len(want) == 0 {
		t.Fatal("no rt sources found")
	}
	if *updateRT {
		old, _ := filepath.Glob("_rtsrc/rt/*.go")
		for _, f := range old {
			os.Remove(f)
		}
		for name, b := range want {
			if err := os.WriteFile(filepath.Join("_rtsrc/rt", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	have, _ := filepath.Glob("_rtsrc/rt/*.go")
	if len(have) != len(want) {
		t.Errorf("embedded rt has %d files, rt/ has %d: run go generate ./internal/instrument", len(have), len(want))
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join("_rtsrc/rt", name))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("embedded rt/%s is stale: run go generate ./internal/instrument", name)
		}
	}
}
