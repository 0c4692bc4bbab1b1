// Package txtartest unpacks txtar fixtures (several files of a test's
// source trees in one archive) for tests.
package txtartest

import (
	"os"
	"testing"

	"golang.org/x/tools/txtar"
)

// Extract writes the files of the txtar archive at path into a new
// temporary directory of t and returns that directory.
func Extract(t testing.TB, path string) string {
	t.Helper()
	ar, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := txtar.FS(ar)
	if err != nil {
		t.Fatalf("txtar %s: %v", path, err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, fsys); err != nil {
		t.Fatalf("extract %s: %v", path, err)
	}
	return dir
}
