// Package patchtest loads the diff fixtures of internal/patch
// (internal/patch/testdata/diff/NAME.txtar, an old/ and a new/ tree) for
// the tests of the packages that diff and generate from them.
// internal/patch's own tests cannot import it (it imports internal/patch).
package patchtest

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/graftdev/graft/internal/patch"
	"github.com/graftdev/graft/internal/txtartest"
)

// Fixture is the path of fixture NAME, wherever the calling test runs.
func Fixture(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "diff", name+".txtar")
}

// LoadPair writes fixture NAME's old/ and new/ trees to a temp dir and
// loads both; env is added to the go command's environment (GOARCH=386
// loads them for 386).
func LoadPair(t testing.TB, name string, env ...string) (*patch.Tree, *patch.Tree) {
	t.Helper()
	dir := txtartest.Extract(t, Fixture(name))
	var trees [2]*patch.Tree
	for i, side := range []string{"old", "new"} {
		tr, err := patch.LoadTree(t.Context(), filepath.Join(dir, side), patch.LoadOptions{Env: env})
		if err != nil {
			t.Fatal(err)
		}
		trees[i] = tr
	}
	return trees[0], trees[1]
}
