package patch

import (
	"errors"
	"strings"
	"testing"

	"github.com/graftdev/graft/api"
)

func TestEscapeCheck(t *testing.T) {
	tests := []struct {
		fixture string
		point   string
		want    string // substring of the refusal; "" for admitted
	}{
		{"escape", "example.com/fx.(*server).allow",
			"(*server).allow: the patch keeps parameter r (leaking param: r), which the original does not keep; callers may have it on their stack"},
		{"escapeok", "example.com/fx.(*server).allow", ""},
		{"escaperesult", "example.com/fx.pick",
			"pick: the patch keeps parameter b (leaking param: b), which the original does not keep"},
		{"body", "example.com/fx.(*server).allow", ""},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			old, new := loadPair(t, tt.fixture)
			target := &api.Manifest{Points: []api.Point{{ID: tt.point}}}
			a, err := Make(t.Context(), MakeOptions{From: old.Dir, To: new.Dir, Target: target})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Make: %v (report %+v)", err, a.Report)
				}
				if !a.Report.Admitted || len(a.Source) == 0 {
					t.Fatalf("not admitted: %+v", a.Report)
				}
				return
			}
			if !errors.Is(err, ErrNotAdmitted) {
				t.Fatalf("Make: err = %v, want %v", err, ErrNotAdmitted)
			}
			var got []string
			for _, c := range a.Report.Changes {
				if !c.Admitted {
					got = append(got, c.Reason)
				}
			}
			t.Logf("refused: %q", got)
			if len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Fatalf("refusals = %q, want one containing %q", got, tt.want)
			}
		})
	}
}

func TestKeeps(t *testing.T) {
	none := leak{}
	heap := leak{heap: true}
	content := leak{content: true}
	res0 := leak{results: map[string]int{"0": 0}}
	res0deref := leak{results: map[string]int{"0": 1}}
	res1 := leak{results: map[string]int{"1": 0}}
	tests := []struct {
		name     string
		old, new leak
		want     bool
	}{
		{"none none", none, none, false},
		{"none heap", none, heap, true},
		{"none content", none, content, true},
		{"none result", none, res0, true},
		{"heap anything", heap, heap, false},
		{"content content", content, content, false},
		{"content heap", content, heap, true},
		{"result same", res0, res0, false},
		{"result other", res0, res1, true},
		{"result deeper only", res0deref, res0, true},
		{"result shallower", res0, res0deref, false},
		{"result content", res0, content, true},
		{"content result", content, res0, true},
		{"result none", res0, none, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keeps(tt.old, tt.new); got != tt.want {
				t.Errorf("keeps(%+v, %+v) = %v, want %v", tt.old, tt.new, got, tt.want)
			}
		})
	}
}

// Without the compiler's summary the slot is refused, never admitted.
func TestEscapeCheckNoSummary(t *testing.T) {
	old, new := loadPair(t, "escapeok")
	id := "example.com/fx.(*server).allow"
	r := &api.PatchReport{Admitted: true, Slots: []string{id},
		Changes: []api.PatchChange{{ID: id, Kind: api.PatchFunc, Change: api.Changed, Admitted: true}}}
	broken := LoadOptions{Env: []string{"GOFLAGS=-mod=nonsense"}}
	if checkEscapes(t.Context(), old, new, broken, broken, r) || r.Admitted {
		t.Fatalf("admitted without a summary: %+v", r)
	}
	if c := r.Changes[0]; c.Admitted || !strings.Contains(c.Reason, "(*server).allow: no escape summary") {
		t.Fatalf("change = %+v", c)
	}
}
