package instrument

import (
	"slices"
	"testing"

	"github.com/graftdev/graft/api"
)

// TestManifestOptionsPlatform: a build is reproduced for the platform its
// manifest names, not this process's, with cgo on when it is patchable.
func TestManifestOptionsPlatform(t *testing.T) {
	for _, tt := range []struct {
		name  string
		build api.ManifestBuild
		want  []string
	}{
		{"386 patchable", api.ManifestBuild{GOOS: "linux", GOARCH: "386", Patchable: true}, []string{"GOOS=linux", "GOARCH=386", "CGO_ENABLED=1"}},
		{"amd64", api.ManifestBuild{GOOS: "linux", GOARCH: "amd64"}, []string{"GOOS=linux", "GOARCH=amd64"}},
		{"no platform recorded", api.ManifestBuild{}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := manifestOptions(&api.Manifest{Build: tt.build}, "", nil)
			if !slices.Equal(o.Env, tt.want) {
				t.Errorf("Env = %q, want %q", o.Env, tt.want)
			}
		})
	}
}
