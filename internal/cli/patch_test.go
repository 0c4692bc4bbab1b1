package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/txtartest"
)

// extract writes internal/patch's fixture NAME's old/ and new/ trees.
func extract(t *testing.T, name string) (string, string) {
	t.Helper()
	dir := txtartest.Extract(t, filepath.Join("..", "patch", "testdata", "diff", name+".txtar"))
	return filepath.Join(dir, "old"), filepath.Join(dir, "new")
}

func TestPatchMakeReport(t *testing.T) {
	tests := []struct {
		fixture  string
		admitted bool
		refused  string // an id in a refused change
	}{
		{"state", true, ""},
		{"init", false, "example.com/fx.init"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			old, new := extract(t, tt.fixture)
			var out, errb bytes.Buffer
			env := &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
			err := Run(t.Context(), []string{"patch", "make", "--from", old, "--to", new, "--json"}, env.Stdout, env.Stderr)
			if tt.admitted != (err == nil) {
				t.Fatalf("err = %v, admitted want %v; stderr %s", err, tt.admitted, errb.String())
			}
			var r api.PatchReport
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out.String())
			}
			if r.Version != api.Version || r.Admitted != tt.admitted {
				t.Errorf("report = %+v", r)
			}
			if tt.refused != "" {
				found := false
				for _, c := range r.Changes {
					if c.ID == tt.refused && !c.Admitted {
						found = true
					}
				}
				if !found || !strings.Contains(err.Error(), "not admitted") {
					t.Errorf("no refusal of %s in %+v (err %v)", tt.refused, r.Changes, err)
				}
			}
		})
	}
}

func TestPatchUsage(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{{"patch"}, {"patch", "bogus"}, {"patch", "make"}, {"patch", "apply"}, {"patch", "revert", "--rt", "x"}} {
		if err := Run(t.Context(), args, &out, &errb); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: err = %v, want usage", args, err)
		}
	}
}
