package plugingen_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftdev/graft/internal/instrument"
	"github.com/graftdev/graft/internal/patch"
	"github.com/graftdev/graft/internal/patch/diff"
	"github.com/graftdev/graft/internal/patch/patchtest"
	"github.com/graftdev/graft/internal/patch/plugingen"
)

// buildPlugin builds plugin source against an instrumented build of the
// old tree, exactly as graft patch make does.
func buildPlugin(t *testing.T, oldDir string, src []byte) {
	t.Helper()
	b, err := instrument.Prepare(t.Context(), instrument.Options{Dir: oldDir, Patterns: []string{"./..."}})
	if err != nil {
		t.Fatal(err)
	}
	ib := &patch.InstrumentBuilder{Target: &b.Manifest}
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
				`*(*int)(unsafe.Pointer(uintptr(unsafe.Pointer(_graft_v)) + 0)) = n + 1`,
				`*(*string)(unsafe.Pointer(uintptr(unsafe.Pointer(_graft_v)) + 8)) = "x"`,
				`_graft_v.Pos = 2`,
				`func p0_pos(n int) p0.GraftT_tok`,
				`*(*int)(unsafe.Pointer(uintptr(unsafe.Pointer(_graft_v)) + 0)) = n * 2`,
				`_graft_v.Pos = 3`,
			},
		},
		{
			name: "sidegen",
			contains: []string{
				// Fields in a side table: next looks its entry up once.
				"_graft_sd_p := p0_side_parser_t.Cached(p)\n\tif _graft_sd_p == nil {\n\t\t_graft_sd_p = p0_side_parser_t.Of(p)\n\t}\n\t_graft_sd_p.depth++",
				`if _graft_sd_p.depth > 100`,
				// rewind, through per-call caches: the body's, and a
				// function literal's own.
				"func p0_parser_rewind(p *p0.GraftT_parser, n int) {\n\tvar _graft_p0_side_parser_c p0_side_parser_c",
				`_graft_p0_side_parser_c.of(p).depth = 0`,
				`defer func() { var _graft_p0_side_parser_c p0_side_parser_c; _graft_p0_side_parser_c.of(p).depth-- }()`,
				`p0_parser_reset(p, b)`,
				`*p0_side_parser_of(_graft_p) = p0_side_parser{}`,
				`p0_side_parser_of(_graft_p).depth = 1`,
				`(*(*int)(unsafe.Pointer(uintptr(unsafe.Pointer(p)) + 24)))`,
				`var p0_side_parser_t _graft_rt.Side[p0.GraftT_parser, p0_side_parser]`,
				`func p0_side_parser_of(p *p0.GraftT_parser) *p0_side_parser { return p0_side_parser_t.Of(p) }`,
			},
		},
		{
			name: "renewgen",
			contains: []string{
				`"example.com/fx.Match": p0_Match`,
				"p0_pattern = regexp.MustCompile(`^[0-9]+(\\.[0-9]+)?$`)",
				`p0_limit = 20`,
				`return p0_pattern.MatchString(s) && len(s) < p0_limit`,
			},
		},
		{
			name: "newtypegen",
			contains: []string{
				`"example.com/fx.Match": p0_Match`,
				`type p0_result int`,
				`const p0_rYes p0_result = 1`,
				`func p0_match(s, p string, n int) p0_result`,
			},
		},
		{
			name: "body",
			contains: []string{
				`func p0_server_allow(s *p0.GraftT_server, n int) bool`,
				`unsafe.Pointer(uintptr(unsafe.Pointer(s)) + 0)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := patchtest.LoadPair(t, tt.name)
			r := diff.Diff(old, new, diff.Options{})
			if !r.Admitted {
				t.Fatalf("fixture not admitted: %+v", r.Changes)
			}
			p, err := plugingen.Generate(old.Pkgs, new.Pkgs, r)
			if tt.unsupported != "" {
				if !errors.Is(err, plugingen.ErrUnsupported) || !strings.Contains(err.Error(), tt.unsupported) {
					t.Fatalf("err = %v, want %v containing %q", err, plugingen.ErrUnsupported, tt.unsupported)
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

// TestGenerateLayout: offsets of fields reached through unsafe are the
// target's, not graft's own: the same fixture loaded for 386 (4-byte ints
// and pointers, a 12-byte slice header) puts parser.pos at 12, not 24.
func TestGenerateLayout(t *testing.T) {
	tests := []struct {
		goarch string
		want   string
	}{
		{"amd64", `(*(*int)(unsafe.Pointer(uintptr(unsafe.Pointer(p)) + 24)))`},
		{"386", `(*(*int)(unsafe.Pointer(uintptr(unsafe.Pointer(p)) + 12)))`},
	}
	for _, tt := range tests {
		t.Run(tt.goarch, func(t *testing.T) {
			old, new := patchtest.LoadPair(t, "sidegen", "GOOS=linux", "GOARCH="+tt.goarch)
			r := diff.Diff(old, new, diff.Options{})
			if !r.Admitted {
				t.Fatalf("fixture not admitted: %+v", r.Changes)
			}
			p, err := plugingen.Generate(old.Pkgs, new.Pkgs, r)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(p.Source), tt.want) {
				t.Errorf("generated source for %s lacks %q:\n%s", tt.goarch, tt.want, p.Source)
			}
		})
	}
}
