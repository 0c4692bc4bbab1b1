package patch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftdev/graft/internal/instrument"
)

// buildPlugin builds plugin source against an instrumented build of the
// old tree, exactly as graft patch make does.
func buildPlugin(t *testing.T, oldDir string, src []byte) {
	t.Helper()
	b, err := instrument.Prepare(t.Context(), instrument.Options{Dir: oldDir, Patterns: []string{"./..."}})
	if err != nil {
		t.Fatal(err)
	}
	ib := &InstrumentBuilder{Target: &b.Manifest}
	out := filepath.Join(t.TempDir(), "p.so")
	id, err := ib.BuildPlugin(t.Context(), "graftpatch_test", src, out)
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if id != b.Manifest.Build.ID {
		t.Errorf("plugin built against %s, target %s", id, b.Manifest.Build.ID)
	}
	if st, err := os.Stat(out); err != nil || st.Size() == 0 {
		t.Fatalf("no plugin: %v", err)
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
				`(*p0.GraftV_hits)++`,
				`n < (*p0.GraftV_limit)`,
				`func p0_isBad(n int) bool`,
				`const p0_badValue = 7`,
				`p0_rejected++`,
			},
		},
		{
			name: "helpers",
			contains: []string{
				`"example.com/fx.walk": p0_walk`,
				`func p0_walk(n *p0.GraftT_node) int`,
				`func p0_walkDepth(n *p0.GraftT_node, d int) (int, error)`,
				`errors.New("too deep")`,
			},
		},
		{
			name: "literal",
			contains: []string{
				`func p0_mk(n int) p0.GraftT_tok`,
				`*(*int)(unsafe.Add(unsafe.Pointer(_graft_v), 0)) = n + 1`,
				`*(*string)(unsafe.Add(unsafe.Pointer(_graft_v), 8)) = "x"`,
				`_graft_v.Pos = 2`,
			},
		},
		{
			name: "sidegen",
			contains: []string{
				`p0_side_parser_of(p).depth++`,
				`p0_parser_reset(p, b)`,
				`*p0_side_parser_of(_graft_p) = p0_side_parser{}`,
				`p0_side_parser_of(_graft_p).depth = 1`,
				`(*(*int)(unsafe.Add(unsafe.Pointer(p), 24)))`,
				`weak.Make(p)`,
			},
		},
		{
			name: "body",
			contains: []string{
				`func p0_server_allow(s *p0.GraftT_server, n int) bool`,
				`unsafe.Add(unsafe.Pointer(s), 0)`,
			},
		},
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
			buildPlugin(t, old.Dir, p.Source)
		})
	}
}
