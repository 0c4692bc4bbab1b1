package diff_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/patch/diff"
	"github.com/graftdev/graft/internal/patch/patchtest"
)

// want is one expected change: "id kind change ok|refused", and a reason substring.
type want struct {
	change string
	reason string
}

func TestDiff(t *testing.T) {
	const p = "example.com/fx."
	tests := []struct {
		name     string
		callers  map[string][]string // Options.Callers, by id without the prefix; nil: unknown
		noPoint  []string
		want     []want
		slots    []string
		admitted bool
	}{
		{
			name: "body",
			want: []want{
				{"(*server).allow func changed ok", "patch point"},
			},
			slots:    []string{"(*server).allow"},
			admitted: true,
		},
		{
			name: "signature",
			want: []want{
				{"Exp func changed refused", "signature change of an exported function"},
				{"Handle func changed ok", "patch point"},
				{"Named func changed ok", "body replaced through its patch point"},
				{"ParseAll func added ok", "new helper"},
				{"orphan func changed refused", "has no caller in the tree"},
				{"parse func changed ok", "signature change (func(b []byte) int → func(b []byte) (int, error)): travels in the patch as a new function; callers recompiled: example.com/fx.Handle"},
			},
			slots: []string{"Handle", "Named"},
		},
		{
			name: "layout",
			want: []want{
				{"(*decoder).next func changed ok", "patch point"},
				{"decoder type changed ok", "adds field(s) depth: kept in a side table"},
				{"header type changed refused", "struct layout change"},
				{"msg type changed refused", "struct tags changed"},
			},
			slots: []string{"(*decoder).next"},
		},
		{
			name: "methodset",
			want: []want{
				{"(*point).String func added ok", "new method"},
				{"box.half func added ok", "new method"},
				{"point type changed refused", "*example.com/fx.point now satisfies fmt.Stringer"},
			},
		},
		{
			name: "init",
			want: []want{
				{"get func changed ok", "patch point"},
				{"init init changed refused", "init already ran"},
				{"limit var changed ok", "read-only after initialization: the new value travels in the patch as a new variable, initialized when the patch loads; no function reads it"},
				{"maxDepth var added ok", "travels in the patch"},
			},
			slots: []string{"get"},
		},
		{
			name: "const",
			want: []want{
				{"buf var changed refused", "initializer uses changed constant example.com/fx.maxLen: the running program initialized it already, and it cannot travel in the patch as a new variable: not read-only after initialization in the running version: assigned at fx.go:11"},
				{"check func changed ok", "patch point"},
				{"maxLen const changed ok", "untyped int = 100 → untyped int = 50"},
			},
			slots: []string{"check"},
		},
		{
			name: "generic",
			want: []want{
				{"(*stack).pop func changed refused", "generic function"},
				{"first func changed refused", "generic function"},
				{"newHelper func added ok", "generic helper"},
			},
		},
		{
			name:    "nopoint",
			noPoint: []string{"leaf", "mid", "taken", "Exported", "T.m"},
			want: []want{
				{"Exported func changed refused", "exported"},
				{"T.m func changed refused", "interface example.com/fx.mer can dispatch"},
				{"a caller changed ok", "calls example.com/fx.leaf"},
				{"b caller changed ok", "calls example.com/fx.leaf"},
				{"leaf func changed ok", "recompiled into its instrumented callers example.com/fx.a, example.com/fx.b"},
				{"taken func changed refused", "used as a function value"},
			},
			slots: []string{"a", "b"},
		},
		{
			// The whole program was searched: Exported has no caller outside
			// the tree; T.m stays refused (an interface can dispatch to it).
			name:    "nopoint",
			callers: map[string][]string{},
			noPoint: []string{"leaf", "mid", "taken", "Exported", "T.m"},
			want: []want{
				{"Exported func changed ok", "nothing in the target program calls it except code this patch replaces"},
				{"T.m func changed refused", "interface example.com/fx.mer can dispatch"},
				{"a caller changed ok", "calls example.com/fx.leaf"},
				{"b caller changed ok", "calls example.com/fx.leaf"},
				{"leaf func changed ok", "recompiled into its instrumented callers example.com/fx.a, example.com/fx.b"},
				{"taken func changed refused", "used as a function value"},
			},
			slots: []string{"a", "b"},
		},
		{
			name:    "nopoint",
			callers: map[string][]string{"Exported": {"example.com/app.main"}},
			noPoint: []string{"leaf", "mid", "taken", "Exported", "T.m"},
			want: []want{
				{"Exported func changed refused", "is exported and called outside the diffed tree by example.com/app.main"},
				{"T.m func changed refused", "interface example.com/fx.mer can dispatch"},
				{"a caller changed ok", "calls example.com/fx.leaf"},
				{"b caller changed ok", "calls example.com/fx.leaf"},
				{"leaf func changed ok", "recompiled into its instrumented callers example.com/fx.a, example.com/fx.b"},
				{"taken func changed refused", "used as a function value"},
			},
			slots: []string{"a", "b"},
		},
		{
			name: "side",
			want: []want{
				{"(*parser).next func changed ok", "patch point"},
				{"newParser func changed ok", "patch point"},
				{"parser type changed ok", "adds field(s) depth: kept in a side table"},
				{"token type changed refused", "a value of token is copied at"},
			},
			slots: []string{"(*parser).next", "newParser"},
		},
		{
			name:    "renew",
			noPoint: []string{"leaf", "Hidden"},
			want: []want{
				{"Public var changed refused", "it is exported"},
				{"check caller changed ok", "it reads example.com/fx.limit, whose initializer changed"},
				{"counter var changed refused", "its address is taken at fx.go:32"},
				{"deep var changed ok", "read by example.com/fx.leaf (recompiled unchanged: example.com/fx.leaf)"},
				{"hidden var changed refused", "reader example.com/fx.Hidden has no patch point (inlinable leaf) and example.com/fx.Hidden is exported"},
				{"leaf caller changed ok", "recompiled into its instrumented callers, because it reads example.com/fx.deep"},
				{"limit var changed ok", "the new value travels in the patch as a new variable"},
				{"match caller changed ok", "it reads example.com/fx.pattern"},
				{"names var changed refused", "a reference into it ([]string) is stored or passed"},
				{"pattern var changed ok", "read by example.com/fx.match"},
				{"seed var changed refused", "read at package initialization (fx.go:40)"},
				{"table var changed refused", "assigned at fx.go:24"},
				{"useLeaf caller changed ok", "it calls a reader of example.com/fx.deep"},
			},
			slots: []string{"check", "match", "useLeaf"},
		},
		{
			name: "helpers",
			want: []want{
				{"errDeep var added ok", "travels in the patch"},
				{"limits type added ok", "new type"},
				{"maxDepth const added ok", "compiled into the patch"},
				{"walk func changed ok", "patch point"},
				{"walkDepth func added ok", "new helper"},
			},
			slots:    []string{"walk"},
			admitted: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := patchtest.LoadPair(t, tt.name)
			var opts diff.Options
			if tt.callers != nil {
				opts.Callers = func(id string) ([]string, bool) { return tt.callers[strings.TrimPrefix(id, p)], true }
			}
			if tt.noPoint != nil {
				opts.HasPoint = func(id string) (bool, string) {
					if slices.Contains(tt.noPoint, strings.TrimPrefix(id, p)) {
						return false, "inlinable leaf"
					}
					return true, ""
				}
			}
			r := diff.Diff(old, new, opts)
			var got []string
			for _, c := range r.Changes {
				verdict := "refused"
				if c.Admitted {
					verdict = "ok"
				}
				got = append(got, strings.Join([]string{strings.TrimPrefix(c.ID, p), c.Kind, c.Change, verdict}, " "))
			}
			var wantIDs []string
			for _, w := range tt.want {
				wantIDs = append(wantIDs, w.change)
			}
			if !slices.Equal(got, wantIDs) {
				t.Fatalf("changes:\n got  %q\n want %q\n%+v", got, wantIDs, r.Changes)
			}
			for i, w := range tt.want {
				if !strings.Contains(r.Changes[i].Reason, w.reason) {
					t.Errorf("%s: reason %q does not contain %q", w.change, r.Changes[i].Reason, w.reason)
				}
			}
			var slots []string
			for _, s := range r.Slots {
				slots = append(slots, strings.TrimPrefix(s, p))
			}
			if !slices.Equal(slots, tt.slots) {
				t.Errorf("slots = %q, want %q", slots, tt.slots)
			}
			if r.Admitted != tt.admitted {
				t.Errorf("admitted = %v, want %v", r.Admitted, tt.admitted)
			}
			if r.Version != api.Version {
				t.Errorf("version = %d", r.Version)
			}
		})
	}
}
