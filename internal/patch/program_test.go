package patch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/graftdev/graft/api"
)

func TestProgramCallers(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":         "module example.com/m\n\ngo 1.22\n",
		"main.go":        "package main\n\nimport \"example.com/m/lib\"\n\nfunc main() { println(lib.F(1)) }\n",
		"lib/lib.go":     "package lib\n\nfunc F(n int) int { return g(n) }\n\nfunc G(n int) int { return n }\n\nfunc g(n int) int { return n + 1 }\n",
		"other/other.go": "package other\n\nimport \"example.com/m/lib\"\n\nvar H = lib.G\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := LoadTree(t.Context(), dir, LoadOptions{Patterns: []string{"./lib"}})
	if err != nil {
		t.Fatal(err)
	}
	m := &api.Manifest{Build: api.ManifestBuild{Dir: dir, Patterns: []string{"."}}}
	callers, err := ProgramCallers(t.Context(), m, tree)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id   string
		want []string
	}{
		{"example.com/m/lib.F", []string{"example.com/m.main"}},
		{"example.com/m/lib.g", nil},       // only the tree calls it
		{"example.com/m/lib.G", nil},       // other is not part of the program
		{"example.com/m/lib.Unknown", nil}, // nothing references it
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, ok := callers(tt.id)
			if !ok || !slices.Equal(got, tt.want) {
				t.Fatalf("callers(%s) = %q, %v; want %q", tt.id, got, ok, tt.want)
			}
		})
	}
	// Patterns that cover other make its package-level use of G a caller.
	m.Build.Patterns = []string{".", "./other"}
	if callers, err = ProgramCallers(t.Context(), m, tree); err != nil {
		t.Fatal(err)
	}
	if got, _ := callers("example.com/m/lib.G"); !slices.Equal(got, []string{"example.com/m/other"}) {
		t.Errorf("callers(G) = %q, want the package other", got)
	}
}
