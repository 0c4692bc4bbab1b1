package instrument

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExtractRT checks that the extracted rt module is rt's source as it is
// in this tree, without its tests, under a go.mod of graft's module path.
func TestExtractRT(t *testing.T) {
	dir, err := extractRT(t.TempDir(), rtHash())
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"../../rt", "../../rt/rtplugin"} {
		names, err := filepath.Glob(filepath.Join(src, "*.go"))
		if err != nil || len(names) == 0 {
			t.Fatalf("no sources in %s: %v", src, err)
		}
		for _, name := range names {
			rel, _ := filepath.Rel("../..", name)
			got, err := os.ReadFile(filepath.Join(dir, rel))
			if strings.HasSuffix(name, "_test.go") {
				if err == nil {
					t.Errorf("test file %s was extracted", rel)
				}
				continue
			}
			want, _ := os.ReadFile(name)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("extracted %s differs from the tree's (err %v)", rel, err)
			}
		}
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !strings.HasPrefix(string(mod), "module "+rtModule+"\n") {
		t.Errorf("go.mod = %q, %v", mod, err)
	}
}
