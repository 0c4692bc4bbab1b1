package patch

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is graft's module root, for building plugins that import rt.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// vetPlugin type-checks plugin source inside the old tree, against graft's
// real rt, as the plugin build would.
func vetPlugin(t *testing.T, oldDir string, src []byte) {
	t.Helper()
	root := repoRoot(t)
	dir := t.TempDir()
	if err := copyTree(oldDir, dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "graftpatch"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "graftpatch", "patch.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod = append(mod, []byte("\nrequire github.com/graftdev/graft v0.0.0\n\nreplace github.com/graftdev/graft => "+root+"\n")...)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"go.mod": mod, "go.sum": sum} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(t.Context(), "go", "vet", "./graftpatch")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generated plugin does not compile against the old tree: %v\n%s\n%s", err, out, src)
	}
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name        string
		contains    []string // in the generated source
		unsupported string   // in the error when the generator must refuse
	}{
		{
			name: "state",
			contains: []string{
				`"example.com/fx.allow": p0_allow`,
				`_graft_rt.Var[int]("example.com/fx.hits")`,
				`_graft_rt.Var[int]("example.com/fx.limit")`,
				`func p0_isBad(n int) bool`,
				`const p0_badValue = 7`,
				`p0_rejected++`,
			},
		},
		{name: "helpers", unsupported: "type example.com/fx.node cannot be named outside its package"},
		{name: "body", unsupported: "type example.com/fx.server cannot be named outside its package"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := loadPair(t, tt.name)
			r := Diff(old, new, Options{})
			if !r.Admitted {
				t.Fatalf("fixture not admitted: %+v", r.Changes)
			}
			p, err := Generate(old, new, r)
			if tt.unsupported != "" {
				if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.unsupported) {
					t.Fatalf("err = %v, want %v containing %q", err, ErrUnsupported, tt.unsupported)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.contains {
				if !strings.Contains(string(p.Source), s) {
					t.Errorf("generated source lacks %q:\n%s", s, p.Source)
				}
			}
			vetPlugin(t, old.Dir, p.Source)
		})
	}
}
