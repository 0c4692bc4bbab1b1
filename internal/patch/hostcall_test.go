package patch

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftdev/graft/internal/instrument"
)

// TestHostCallsKeepLocalsOnStack: a plugin calls the running program's
// unexported helpers through the build's exports, which are wrapper
// functions the plugin's compiler sees through, so a local whose address
// it passes to helpers that do not keep it stays on the stack, as in the
// program's own build (through function variables it would move to the
// heap, one allocation per call).
func TestHostCallsKeepLocalsOnStack(t *testing.T) {
	old, new := loadPair(t, "hostcall")
	b, err := instrument.Prepare(t.Context(), instrument.Options{Dir: old.Dir, Patterns: []string{"./..."}, Patchable: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingBuilder{InstrumentBuilder: InstrumentBuilder{Target: &b.Manifest}}
	a, err := Make(t.Context(), MakeOptions{From: old.Dir, To: new.Dir, Target: &b.Manifest,
		Builder: rec, Out: filepath.Join(t.TempDir(), "p.so")})
	if err != nil {
		t.Fatalf("Make: %v\n%s", err, a.Source)
	}
	src := string(a.Source)
	for _, s := range []string{`p0.GraftF_look(&t)`, `p0.GraftF_push(p, &t)`, `p0.GraftM_parser_peek(p, &t)`} {
		if !strings.Contains(src, s) {
			t.Errorf("generated source lacks %q:\n%s", s, src)
		}
	}

	// Compile the plugin again, asking the compiler what moves to the heap.
	cmd, err := b.Command(t.Context(), "build", map[string]string{filepath.Join(old.Dir, rec.pkg, "patch.go"): string(a.Source)},
		"-buildmode=plugin", "-gcflags=./"+rec.pkg+"=-m", "-o", filepath.Join(t.TempDir(), "m.so"), "./"+rec.pkg)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir, cmd.Env = old.Dir, append(cmd.Env, "CGO_ENABLED=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "inlining call to") {
		t.Fatalf("no -m output for the plugin package:\n%s", out)
	}
	if strings.Contains(string(out), "moved to heap: t") {
		t.Errorf("the plugin moves t to the heap; the program's build keeps it on the stack:\n%s", out)
	}
}

// recordingBuilder records the plugin package the generator named.
type recordingBuilder struct {
	InstrumentBuilder
	pkg string
}

func (r *recordingBuilder) BuildPlugin(ctx context.Context, pkg string, src []byte, out string) (string, error) {
	r.pkg = pkg
	return r.InstrumentBuilder.BuildPlugin(ctx, pkg, src, out)
}
