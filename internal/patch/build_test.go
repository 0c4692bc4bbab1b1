package patch

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/graftdev/graft/api"
)

func TestInternalParent(t *testing.T) {
	tests := []struct {
		name, imports, want, err string
	}{
		{"none", `"fmt"; p0 "example.com/m/p"`, "", ""},
		{"one", `p0 "golang.org/x/text/internal/language"; "golang.org/x/text/language"`, "golang.org/x/text", ""},
		{"nested", `"example.com/m/internal/a"; "example.com/m/internal/a/internal/b"`, "example.com/m/internal/a", ""},
		{"apart", `"example.com/m/internal/a"; "example.com/n/internal/b"`, "", "no package may import both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "package main\n\nimport (" + tt.imports + ")\n"
			got, err := internalParent([]byte(src))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("internalParent = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestPlatformMatch: a target built for another GOOS/GOARCH is refused
// with the platforms named, not as changed sources.
func TestPlatformMatch(t *testing.T) {
	mk := func(goos, goarch string) *api.Manifest {
		return &api.Manifest{Build: api.ManifestBuild{GOOS: goos, GOARCH: goarch}}
	}
	tests := []struct {
		name            string
		target, rebuilt *api.Manifest
		err             string
	}{
		{"same", mk("linux", "386"), mk("linux", "386"), ""},
		{"unrecorded", mk("", ""), mk("linux", "amd64"), ""},
		{"arch", mk("linux", "386"), mk("linux", "amd64"), "built for linux/386 and this environment builds for linux/amd64: run with GOOS=linux GOARCH=386"},
		{"os", mk("darwin", "amd64"), mk("linux", "amd64"), "run with GOOS=darwin GOARCH=amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := platformMatch(tt.target, tt.rebuilt)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("platformMatch = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrWrongBuild) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("platformMatch = %v, want %v containing %q", err, ErrWrongBuild, tt.err)
			}
			if got := targetEnv(tt.target); !slices.Equal(got, []string{"GOOS=" + tt.target.Build.GOOS, "GOARCH=" + tt.target.Build.GOARCH}) {
				t.Errorf("targetEnv = %q", got)
			}
		})
	}
}
