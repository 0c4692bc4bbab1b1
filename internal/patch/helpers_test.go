package patch

import (
	"path/filepath"
	"testing"

	"github.com/graftdev/graft/internal/txtartest"
)

// loadPair writes testdata/diff/NAME.txtar's old/ and new/ trees to a temp
// dir and loads both.
func loadPair(t *testing.T, name string) (*Tree, *Tree) {
	t.Helper()
	dir := txtartest.Extract(t, filepath.Join("testdata", "diff", name+".txtar"))
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
