package patch

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/tools/txtar"
)

// loadPair writes testdata/diff/NAME.txtar's old/ and new/ trees to a temp
// dir and loads both.
func loadPair(t *testing.T, name string) (*Tree, *Tree) {
	t.Helper()
	ar, err := txtar.ParseFile(filepath.Join("testdata", "diff", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range ar.Files {
		p := filepath.Join(dir, f.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old, err := LoadTree(t.Context(), filepath.Join(dir, "old"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	new, err := LoadTree(t.Context(), filepath.Join(dir, "new"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return old, new
}
