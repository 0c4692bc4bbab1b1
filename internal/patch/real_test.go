package patch

import (
	"strings"
	"testing"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/patch/diff"
)

// TestRealModulePairs diffs real vulnerability fixes fetched through the
// module proxy (see docs/vulns-patch.md for the full table).
func TestRealModulePairs(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches modules through the module proxy; skipped with -short")
	}
	tests := []struct {
		module, from, to string
		admitted         bool
		change           string // an id that must be in the report
		reason           string // in that change's reason
	}{
		{"github.com/tidwall/gjson", "v1.6.5", "v1.6.6", true, "github.com/tidwall/gjson.unwrap", "patch point"},
		// The new parser field goes to a side table: the parser is only
		// handled by pointer, and reset by a literal assignment.
		{"gopkg.in/yaml.v2", "v2.2.7", "v2.2.8", true, "gopkg.in/yaml.v2.yaml_parser_t", "adds field(s) simple_keys_by_tok: kept in a side table"},
		{"github.com/tidwall/gjson", "v1.6.4", "v1.6.5", false, "github.com/tidwall/match", "requirement github.com/tidwall/match v1.0.1 → v1.0.3"},
	}
	for _, tt := range tests {
		t.Run(tt.module+"@"+tt.to, func(t *testing.T) {
			work := t.TempDir()
			var trees []*Tree
			for _, v := range []string{tt.from, tt.to} {
				dir, err := FetchModule(t.Context(), tt.module+"@"+v, work)
				if err != nil {
					t.Fatal(err)
				}
				tr, err := LoadTree(t.Context(), dir, LoadOptions{ModMod: true})
				if err != nil {
					t.Fatal(err)
				}
				trees = append(trees, tr)
			}
			r := diff.Diff(trees[0], trees[1], diff.Options{})
			if r.Admitted != tt.admitted {
				t.Errorf("admitted = %v, want %v: %+v", r.Admitted, tt.admitted, r.Changes)
			}
			var found *api.PatchChange
			for i := range r.Changes {
				if r.Changes[i].ID == tt.change {
					found = &r.Changes[i]
				}
			}
			if found == nil {
				t.Fatalf("no change %s in %+v", tt.change, r.Changes)
			}
			if !strings.Contains(found.Reason, tt.reason) {
				t.Errorf("%s: reason %q does not contain %q", tt.change, found.Reason, tt.reason)
			}
		})
	}
}
