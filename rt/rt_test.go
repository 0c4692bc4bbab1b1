package rt

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Points registered by hand, as generated code would.
var (
	pAdd, pDiv, pBusy Point
	fAdd              addFn
	fDiv              divFn
	fBusy             func()
	addCalls          int
)

type addFn = func(int, int) int
type divFn = func(int, int) (int, error)

func add(a, b int) int {
	if w := pAdd.Load(); w != 0 {
		if w&(Sealed|Patched) != 0 {
			if f := fAdd; f != nil {
				return f(a, b)
			}
			if w&Sealed != 0 {
				panic(pAdd.Err())
			}
		}
	}
	addCalls++
	return a + b
}

func div(a, b int) (r0 int, r1 error) {
	if w := pDiv.Load(); w != 0 {
		if w&Catch != 0 {
			defer Recover(&r1)
		}
		if w&(Sealed|Patched) != 0 {
			if f := fDiv; f != nil {
				return f(a, b)
			}
			if w&Sealed != 0 {
				r1 = pDiv.Err()
				return
			}
		}
	}
	return a / add(b, 0), nil
}

var registerOnce sync.Once

func register() {
	registerOnce.Do(func() {
		Register(&pAdd, PointInfo{ID: "rt.add", Func: "add"}, &fAdd)
		Register(&pDiv, PointInfo{ID: "rt.div", Func: "div", ErrorRet: true}, &fDiv)
		Register(&pBusy, PointInfo{ID: "github.com/graftdev/graft/rt.blockForever", Func: "blockForever"}, &fBusy)
	})
}

func TestSealAndCatch(t *testing.T) {
	register()
	if err := Seal("rt.add", true); err != nil {
		t.Fatal(err)
	}
	defer Seal("rt.add", false)
	// div has an error result: add's typed panic comes back as div's error.
	_, err := div(4, 2)
	var e *Error
	if !errors.As(err, &e) || e.ID != "rt.add" || e.Kind != KindSealed {
		t.Fatalf("div with add sealed: %v", err)
	}
	if err := Seal("rt.nope", true); !errors.Is(err, ErrNoPoint) {
		t.Errorf("sealing an unknown point: %v", err)
	}
	Seal("rt.add", false)
	if v, err := div(4, 2); v != 2 || err != nil {
		t.Errorf("unsealed: %v %v", v, err)
	}
	if pDiv.Load() != 0 || pAdd.Load() != 0 {
		t.Errorf("words not dormant after unsealing: %b %b", pDiv.Load(), pAdd.Load())
	}
}

func TestInstallAllOrNothing(t *testing.T) {
	register()
	_, err := Install("bad", map[string]any{
		"rt.add": func(a, b int) int { return a * b },
		"rt.div": func(a, b int) int { return 0 }, // wrong type
	})
	if err == nil || !strings.Contains(err.Error(), "rt.div") {
		t.Fatalf("mistyped install: %v", err)
	}
	if add(2, 3) != 5 {
		t.Fatal("a refused install changed add")
	}
	p1, err := Install("p-mul", map[string]any{"rt.add": func(a, b int) int { return a * b }})
	if err != nil {
		t.Fatal(err)
	}
	if add(2, 3) != 6 {
		t.Error("patch not installed")
	}
	p2, err := Install("p-sub", map[string]any{"rt.add": func(a, b int) int { return a - b }})
	if err != nil {
		t.Fatal(err)
	}
	if add(2, 3) != -1 {
		t.Error("second patch not installed")
	}
	if err := p1.Revert(); err == nil {
		t.Error("reverting the earlier patch under a later one was allowed")
	}
	if err := p2.Revert(); err != nil || add(2, 3) != 6 {
		t.Errorf("revert of the later patch: %v, add=%d", err, add(2, 3))
	}
	if err := p1.Revert(); err != nil || add(2, 3) != 5 {
		t.Errorf("revert of the first patch: %v, add=%d", err, add(2, 3))
	}
	if len(Patches()) != 0 || pAdd.Load() != 0 {
		t.Errorf("after reverting all: %v, word %b", Patches(), pAdd.Load())
	}
}

// release is the channel blockForever waits on, fresh for each run.
var release atomic.Pointer[chan struct{}]

func blockForever() { <-*release.Load() }

// testRun numbers runs of the tests that register ids in rt's process-wide
// registries (first registration wins), so -count=N registers fresh ones.
var testRun atomic.Int64

func TestInstallSafeWaits(t *testing.T) {
	register()
	ch := make(chan struct{})
	release.Store(&ch)
	started := make(chan struct{})
	go func() { close(started); blockForever() }()
	<-started
	time.Sleep(10 * time.Millisecond) // let it block inside blockForever
	_, _, err := InstallSafe("busy", map[string]any{"github.com/graftdev/graft/rt.blockForever": func() {}}, InstallOptions{Wait: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "on a goroutine's stack") {
		t.Fatalf("install while the function runs: %v", err)
	}
	close(ch)
	pt, _, err := InstallSafe("busy", map[string]any{"github.com/graftdev/graft/rt.blockForever": func() {}}, InstallOptions{Wait: 5 * time.Second})
	if err != nil {
		t.Fatalf("install after it returned: %v", err)
	}
	pt.Revert()
}

func TestSymbols(t *testing.T) {
	counter := 41
	pkg := fmt.Sprintf("example.com/p%d", testRun.Add(1))
	Sym(pkg, "counter", &counter)
	Sym(pkg, "helper", func(s string) int { return len(s) })
	v, err := Var[int](pkg + ".counter")
	if err != nil || *v != 41 {
		t.Fatalf("Var: %v %v", v, err)
	}
	*v++
	if counter != 42 {
		t.Error("Var does not point at the variable")
	}
	f, err := Func[func(string) int](pkg + ".helper")
	if err != nil || f("abc") != 3 {
		t.Fatalf("Func: %v", err)
	}
	if _, err := Func[func() int](pkg + ".helper"); err == nil {
		t.Error("mistyped Func lookup succeeded")
	}
}

func TestDoAndHandleOp(t *testing.T) {
	register()
	if err := HandleOp("list", nil); err == nil {
		t.Error("a built-in op was replaced")
	}
	HandleOp("echo", func(arg json.RawMessage) (any, error) { return string(arg), nil })
	resp := Do(Request{Op: "echo", Arg: json.RawMessage(`"hi"`)})
	if resp.Error != "" || string(resp.Result) != `"\"hi\""` {
		t.Errorf("echo: %+v", resp)
	}
	resp = Do(Request{Op: "on", IDs: []string{"rt.add", "nope"}})
	if len(resp.Changed) != 1 || len(resp.Unknown) != 1 || pAdd.Load()&Sealed == 0 {
		t.Errorf("on with a point id: %+v", resp)
	}
	Do(Request{Op: "off", IDs: []string{"rt.add"}})
	if l := Do(Request{Op: "list"}); l.List == nil || len(l.List.Checks) < 2 {
		t.Errorf("list: %+v", l)
	}
}

func TestEscapeDots(t *testing.T) {
	for in, want := range map[string]string{
		"gopkg.in/yaml.v3.(*parser).parse": "gopkg.in/yaml%2ev3.(*parser).parse",
		"main.f":                           "main.f",
		"example.com/m/p.F":                "example.com/m/p.F",
	} {
		if got := escapeDots(in); got != want {
			t.Errorf("escapeDots(%q) = %q, want %q", in, got, want)
		}
	}
}

// recurse calls itself n times, checking s at each entry as generated code
// does for a depth site.
func recurse(s *Site, n int) int {
	Depth(s)
	if n == 0 {
		return 0
	}
	return recurse(s, n-1) + 1
}

func TestDepth(t *testing.T) {
	tests := []struct {
		name  string
		limit int64
		n     int
		stop  bool
	}{
		{"under a small limit", 10, 5, false},
		{"over a small limit", 10, 40, true},
		{"under a large limit (sampled)", 1000, 900, false},
		{"over a large limit (sampled)", 1000, 3000, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := new(Site)
			RegisterSite(s, nil, SiteInfo{ID: fmt.Sprintf("test.recurse:depth:%d.%d", i, testRun.Add(1)), Kind: KindDepth})
			if err := SetSite(s.info.ID, true, tc.limit); err != nil {
				t.Fatal(err)
			}
			defer SetSite(s.info.ID, false, 0)
			var got any
			func() {
				defer func() { got = recover() }()
				recurse(s, tc.n)
			}()
			e, ok := got.(*Error)
			if tc.stop != ok || (ok && e.Kind != KindDepth) {
				t.Errorf("recover() = %v, want a depth *Error: %v", got, tc.stop)
			}
			if got != nil && !ok {
				t.Errorf("unexpected panic %v", got)
			}
		})
	}
}
