package patch

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/txtartest"
)

// fakeBuilder writes the source as the "plugin": Make and Verify care about
// the file's bytes, not that it is an ELF.
type fakeBuilder struct{ id string }

func (f fakeBuilder) BuildPlugin(_ context.Context, pkg string, src []byte, out string) (string, error) {
	return f.id, os.WriteFile(out, append([]byte(pkg+"\n"), src...), 0o644)
}

func TestMakeAndVerify(t *testing.T) {
	old, new := loadPair(t, "state")
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	so := filepath.Join(t.TempDir(), "fix.so")
	target := &api.Manifest{Build: api.ManifestBuild{ID: "build-A"}, Points: []api.Point{{ID: "example.com/fx.allow"}, {ID: "example.com/fx.Handle"}}}
	a, err := Make(t.Context(), MakeOptions{From: old.Dir, To: new.Dir, Target: target, Builder: fakeBuilder{"build-A"}, Key: priv, Out: so})
	if err != nil {
		t.Fatal(err)
	}
	if a.Manifest.BuildID != "build-A" || len(a.Manifest.Slots) != 1 || a.Manifest.Slots[0] != "example.com/fx.allow" {
		t.Fatalf("manifest = %+v", a.Manifest)
	}
	if m, _, err := Verify(so, pub, "build-A"); err != nil || m.ID != a.Manifest.ID {
		t.Fatalf("Verify = %+v, %v", m, err)
	}

	// A target whose build differs from what the builder produced.
	_, err = Make(t.Context(), MakeOptions{From: old.Dir, To: new.Dir, Target: &api.Manifest{Build: api.ManifestBuild{ID: "build-B"}, Points: target.Points}, Builder: fakeBuilder{"build-A"}, Key: priv, Out: filepath.Join(t.TempDir(), "x.so")})
	if !errors.Is(err, ErrWrongBuild) {
		t.Errorf("make against another build: err = %v, want %v", err, ErrWrongBuild)
	}

	tamperManifest := func(t *testing.T, dst string) {
		b, _ := os.ReadFile(ManifestPath(so))
		var s api.SignedPatch
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		var m api.PatchManifest
		raw, _ := decodeB64(s.Body)
		_ = json.Unmarshal(raw, &m)
		m.BuildID = "build-B"
		raw, _ = json.Marshal(m)
		s.Body = encodeB64(raw)
		b, _ = json.Marshal(s)
		copyFile(t, so, dst)
		os.WriteFile(ManifestPath(dst), b, 0o644)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dst string)
		pub   ed25519.PublicKey
		build string
		want  error
	}{
		{"ok", func(t *testing.T, dst string) { copyArtifact(t, so, dst) }, pub, "build-A", nil},
		{"other build", func(t *testing.T, dst string) { copyArtifact(t, so, dst) }, pub, "build-B", ErrWrongBuild},
		{"wrong key", func(t *testing.T, dst string) { copyArtifact(t, so, dst) }, otherPub, "build-A", api.ErrPatchWrongKey},
		{"plugin modified", func(t *testing.T, dst string) {
			copyArtifact(t, so, dst)
			f, _ := os.OpenFile(dst, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("x"))
			f.Close()
		}, pub, "build-A", ErrPluginModified},
		{"manifest tampered", tamperManifest, pub, "build-B", api.ErrPatchTampered},
		{"unsigned", func(t *testing.T, dst string) {
			copyFile(t, so, dst)
			os.WriteFile(ManifestPath(dst), []byte(`{"version":1,"key_id":"x","body":"e30="}`), 0o644)
		}, pub, "build-A", api.ErrPatchUnsigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "p.so")
			tt.setup(t, dst)
			_, _, err := Verify(dst, tt.pub, tt.build)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
func encodeB64(b []byte) string          { return base64.StdEncoding.EncodeToString(b) }

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyArtifact(t *testing.T, src, dst string) {
	copyFile(t, src, dst)
	copyFile(t, ManifestPath(src), ManifestPath(dst))
}

func TestMakeWith(t *testing.T) {
	root := txtartest.Extract(t, filepath.Join("testdata", "with", "with.txtar"))
	from, to := filepath.Join(root, "app", "old"), filepath.Join(root, "app", "new")
	tests := []struct {
		name     string
		with     []Dependency
		admitted bool
		want     []string // "id kind verdict", ids without example.com/
	}{
		{name: "alone", admitted: false, want: []string{"app.Check func ok", "dep module refused"}},
		{
			name:     "with",
			with:     []Dependency{{Module: "example.com/dep", From: filepath.Join(root, "dep", "old"), To: filepath.Join(root, "dep", "new")}},
			admitted: true,
			want:     []string{"app.Check func ok", "dep module ok", "dep.Limit func ok", "dep.Match func ok", "dep.match func ok"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Make(t.Context(), MakeOptions{From: from, To: to, With: tt.with, WorkDir: t.TempDir()})
			if tt.admitted && err != nil || !tt.admitted && !errors.Is(err, ErrNotAdmitted) {
				t.Fatalf("err = %v", err)
			}
			var got []string
			for _, c := range a.Report.Changes {
				v := "refused"
				if c.Admitted {
					v = "ok"
				}
				got = append(got, strings.TrimPrefix(c.ID, "example.com/")+" "+c.Kind+" "+v)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("changes = %q, want %q\n%+v", got, tt.want, a.Report.Changes)
			}
			if tt.admitted && !strings.Contains(string(a.Source), "func p1_dep_match(") && !strings.Contains(string(a.Source), "_match(s string, n int) bool") {
				t.Errorf("plugin lacks the dependency's new match:\n%s", a.Source)
			}
		})
	}
}
