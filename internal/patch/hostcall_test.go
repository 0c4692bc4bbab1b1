package patch

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graftdev/graft/internal/instrument"
	"github.com/graftdev/graft/internal/patch/plugingen"
)

// TestHostEscapes: the compiler's facts about the running program's
// helpers decide which pointer arguments the plugin hides from escape
// analysis when it calls them through the build's exports, and the plugin
// builds against the instrumented target.
func TestHostEscapes(t *testing.T) {
	old, new := loadPair(t, "hostcall")
	facts := hostEscapes(newEscapeFacts(t.Context(), old, LoadOptions{}))
	if facts == nil {
		t.Fatal("no facts from the compiler")
	}
	for _, tt := range []struct {
		id   string
		want []plugingen.Escape
	}{
		{"example.com/fx.look", []plugingen.Escape{plugingen.EscapeNone}},
		{"example.com/fx.push", []plugingen.Escape{plugingen.EscapeContent, plugingen.EscapeContent}},
		{"example.com/fx.keep", []plugingen.Escape{plugingen.EscapeUnknown}},
		{"example.com/fx.(*parser).peek", []plugingen.Escape{plugingen.EscapeNone, plugingen.EscapeNone}},
	} {
		t.Run(tt.id, func(t *testing.T) {
			got, ok := facts(tt.id)
			if !ok || !slices.Equal(got, tt.want) {
				t.Errorf("facts(%s) = %v, %v; want %v", tt.id, got, ok, tt.want)
			}
		})
	}

	b, err := instrument.Prepare(t.Context(), instrument.Options{Dir: old.Dir, Patterns: []string{"./..."}, Patchable: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Make(t.Context(), MakeOptions{From: old.Dir, To: new.Dir, Target: &b.Manifest,
		Builder: &InstrumentBuilder{Target: &b.Manifest}, Out: filepath.Join(t.TempDir(), "p.so")})
	if err != nil {
		t.Fatalf("Make: %v\n%s", err, a.Source)
	}
	src := string(a.Source)
	for _, s := range []string{
		// look keeps nothing: its argument is hidden.
		`func p0_host_look(a0 *p0.GraftT_tok) int {`,
		`return p0.GraftF_look((*p0.GraftT_tok)(_graft_rt.NoEscape(_graft_rt.Pointer(a0))))`,
		`return p0_host_look(&t)`,
		// push keeps what its arguments point to: hidden, and the
		// content leak stated.
		"if _graft_never {\n\t\t_graft_sink = *a0\n\t\t_graft_sink = *a1\n\t}",
		`p0_host_push(p, &t)`,
		// The method through its method expression.
		`p0_host_parser_peek(p, &t)`,
		// keep keeps its argument: called as is.
		`p0.GraftF_keep(&t)`,
	} {
		if !strings.Contains(src, s) {
			t.Errorf("generated source lacks %q:\n%s", s, src)
		}
	}
	if strings.Contains(src, "func p0_host_keep") {
		t.Errorf("keep keeps its argument but is wrapped:\n%s", src)
	}
}
