package rewrite

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// testImporter imports from gc export data: rt (built from ../../rt, so
// rewritten files are type-checked against the rt the compiler would see)
// and the standard library packages the test inputs use. One `go list
// -export` in the first process finds the files; fuzz workers inherit the
// list through exportsEnv and start no process of their own (the source
// importer they used before ran `go tool cgo` for package net inside every
// worker, which is what stalled -fuzz after the seeds).
type testImporter struct {
	mu    sync.Mutex // the gc importer is not safe for concurrent use
	once  sync.Once
	err   error
	made  string            // the list file this process wrote
	files map[string]string // import path → export data file
	gc    types.Importer
}

// exportsEnv names the file listing "path export-file" lines, set by the
// process that ran go list so that fuzz workers (started with its
// environment) reuse it.
const exportsEnv = "GRAFT_REWRITE_TEST_EXPORTS"

// testPackages are what test inputs may import; mutated inputs importing
// anything else fail to type-check and are out of scope.
var testPackages = []string{"errors", "fmt", "strings", "strconv", "sort", "sync", "sync/atomic", "unsafe", "io", "os", "bytes", "math", "time", "context", "../../rt"}

var imp = &testImporter{}

// load finds the export data files once per process.
func (ti *testImporter) load() error {
	ti.once.Do(func() {
		var list []byte
		if name := os.Getenv(exportsEnv); name != "" {
			list, ti.err = os.ReadFile(name)
		} else {
			args := append([]string{"list", "-export", "-deps", "-f", "{{if .Export}}{{.ImportPath}} {{.Export}}{{end}}"}, testPackages...)
			cmd := exec.Command("go", args...)
			cmd.Stderr = os.Stderr
			if list, ti.err = cmd.Output(); ti.err == nil {
				var f *os.File
				if f, ti.err = os.CreateTemp("", "graft-rewrite-exports-*"); ti.err == nil {
					_, ti.err = f.Write(list)
					f.Close()
					os.Setenv(exportsEnv, f.Name())
					ti.made = f.Name()
				}
			}
		}
		if ti.err != nil {
			ti.err = fmt.Errorf("find export data: %w", ti.err)
			return
		}
		ti.files = map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
			if path, file, ok := strings.Cut(line, " "); ok {
				ti.files[path] = file
			}
		}
		ti.gc = importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
			file, ok := ti.files[path]
			if !ok {
				return nil, fmt.Errorf("import %s: not among the test's packages", path)
			}
			return os.Open(file)
		})
	})
	return ti.err
}

func (ti *testImporter) Import(path string) (*types.Package, error) {
	if err := ti.load(); err != nil {
		return nil, err
	}
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.gc.Import(path)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if imp.made != "" {
		os.Remove(imp.made)
	}
	os.Exit(code)
}

// check type-checks files as package path; it returns the Input for
// Package or the type errors.
func check(path string, srcs map[string][]byte) (Input, error) {
	fset := token.NewFileSet()
	in := Input{PkgPath: path, Fset: fset, Src: srcs, Info: &types.Info{
		Types: map[ast.Expr]types.TypeAndValue{}, Defs: map[*ast.Ident]types.Object{},
		Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{},
	}}
	var names []string
	for n := range srcs {
		names = append(names, n)
	}
	for _, n := range sortStrings(names) {
		f, err := parser.ParseFile(fset, n, srcs[n], parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return in, err
		}
		in.Files = append(in.Files, f)
	}
	var errs []string
	conf := types.Config{Importer: imp, Error: func(err error) { errs = append(errs, err.Error()) }}
	conf.Check(path, fset, in.Files, in.Info)
	if len(errs) > 0 {
		return in, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return in, nil
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// rewriteAndCheck rewrites a type-correct package and type-checks the
// result.
func rewriteAndCheck(t testing.TB, path string, srcs map[string][]byte, cfg Config) (*Output, map[string][]byte) {
	t.Helper()
	in, err := check(path, srcs)
	if err != nil {
		t.Fatalf("input does not type-check: %v", err)
	}
	out, err := Package(in, cfg)
	if err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	res := map[string][]byte{}
	for n, b := range srcs {
		res[n] = b
	}
	for n, b := range out.Files {
		res[n] = b
	}
	if exp := Exports(in); exp != nil {
		res["zz_graft_export.go"] = exp
	}
	if _, err := check(path, res); err != nil {
		var all bytes.Buffer
		for n, b := range out.Files {
			fmt.Fprintf(&all, "--- %s\n%s\n", n, b)
		}
		t.Fatalf("rewritten package does not type-check: %v\n%s", err, all.String())
	}
	return out, res
}

func TestGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/golden/*.go")
	if len(inputs) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, name := range inputs {
		t.Run(filepath.Base(name), func(t *testing.T) {
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Base(name)
			out, _ := rewriteAndCheck(t, "example.com/"+strings.TrimSuffix(base, ".go"), map[string][]byte{base: src}, Config{})
			var got bytes.Buffer
			got.Write(out.Files[base])
			got.WriteString("\n/* manifest:\n")
			m, _ := json.MarshalIndent(struct {
				Points, Skipped, Sites any
			}{out.Points, out.Skipped, out.Sites}, "", " ")
			got.Write(m)
			got.WriteString("\n*/\n")
			golden := strings.TrimSuffix(name, ".go") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("output differs from %s (run go test -update and review the diff):\n%s", golden, got.String())
			}
		})
	}
}

// TestLinesKept checks the property everything else relies on: the
// rewritten text has every original line at the same line number.
func TestLinesKept(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/golden/*.go")
	for _, name := range inputs {
		src, _ := os.ReadFile(name)
		base := filepath.Base(name)
		out, _ := rewriteAndCheck(t, "example.com/x", map[string][]byte{base: src}, Config{})
		orig := strings.Split(string(src), "\n")
		got := strings.Split(string(out.Files[base]), "\n")
		for i, line := range orig {
			if strings.TrimSpace(line) == "" {
				continue
			}
			// Every original line's tokens appear on the same line
			// (insertions only add text around them).
			f := strings.Fields(line)
			if !strings.Contains(got[i], f[len(f)-1]) {
				t.Errorf("%s:%d: %q moved; got %q", base, i+1, line, got[i])
			}
		}
	}
}

// TestSiteIDStable checks that a site's id does not change when unrelated
// code (another function, lines above) changes.
func TestSiteIDStable(t *testing.T) {
	a := "package p\n\nfunc f(b []int, i int) int {\n\tprintln()\n\treturn b[i] / i\n}\n"
	b := "package p\n\n// comment\n\nfunc g() { println(); println() }\n\nfunc f(b []int, i int) int {\n\tprintln()\n\treturn b[i] / i\n}\n"
	ids := func(src string) []string {
		out, _ := rewriteAndCheck(t, "example.com/p", map[string][]byte{"p.go": []byte(src)}, Config{Budget: -1})
		var s []string
		for _, site := range out.Sites {
			if site.Func == "f" {
				s = append(s, site.ID)
			}
		}
		return s
	}
	ia, ib := ids(a), ids(b)
	if len(ia) != 2 || fmt.Sprint(ia) != fmt.Sprint(ib) {
		t.Errorf("site ids changed by an unrelated edit: %v vs %v", ia, ib)
	}
	c := "package p\n\nfunc f(b []int, i int) int {\n\tprintln()\n\treturn i / b[i]\n}\n"
	if ic := ids(c); fmt.Sprint(ic) == fmt.Sprint(ia) {
		t.Errorf("site ids did not change when the function changed: %v", ic)
	}
}

func FuzzRewrite(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/golden/*.go")
	for _, name := range inputs {
		src, _ := os.ReadFile(name)
		f.Add(string(src))
	}
	f.Add("package p\nfunc f(x interface{}) (int, error) { for { return x.(int) / 2, nil } }\n")
	f.Add("package p\ntype T struct{}\nfunc (T) m(int, ...string) (a, b int) { if true { return } ; return 1, 2 }\n")
	// Find the export data here, before the workers start, so that they
	// inherit the list (exportsEnv) instead of running go themselves.
	if err := imp.load(); err != nil {
		f.Fatal(err)
	}
	// Every new interesting input is minimized before fuzzing goes on, for
	// up to -fuzzminimizetime (60 s by default) with no progress shown: at
	// a few thousand executions a second that is what looked like a stall
	// after the first executions. Unless the flag is given, spend 2 s.
	minimize := false
	flag.Visit(func(fl *flag.Flag) { minimize = minimize || fl.Name == "test.fuzzminimizetime" })
	if !minimize {
		if err := flag.Set("test.fuzzminimizetime", "2s"); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		srcs := map[string][]byte{"f.go": []byte(src)}
		in, err := check("example.com/fuzz", srcs)
		if err != nil {
			return // only compiling inputs are in scope
		}
		_ = in
		rewriteAndCheck(t, "example.com/fuzz", srcs, Config{})
		rewriteAndCheck(t, "example.com/fuzz", srcs, Config{Budget: -1, AtomicLoad: true})
		// The compiler-driven mode (no function inlinable: frameless
		// leaves are skipped, their make sites test their own switch).
		rewriteAndCheck(t, "example.com/fuzz", srcs, Config{Inlinable: map[string]bool{}})
	})
}

// TestCompilerInlinable checks the compiler-driven mode (Config.Inlinable):
// functions the compiler inlines and frameless leaves get no patch point,
// with the reason; everything else does.
func TestCompilerInlinable(t *testing.T) {
	src := "package p\n\ntype T struct{ n int }\n\nfunc (t *T) get() int { return t.n }\n\nfunc leaf(b []byte) int {\n\tn := 0\n\tfor i := 0; i < len(b); i++ {\n\t\tn += int(b[i])\n\t}\n\treturn n + (&T{}).get()\n}\n\nfunc caller(b []byte) int {\n\tprintln()\n\treturn leaf(b)\n}\n\nfunc big(x int) int {\n\tif x > 0 {\n\t\treturn big(x-1) + 1\n\t}\n\treturn 0\n}\n"
	tests := []struct {
		name      string
		inlinable map[string]bool
		points    []string
		skipped   map[string]string // func → reason prefix
	}{
		{"compiler inlines get", map[string]bool{"(*T).get": true}, []string{"caller", "big"},
			map[string]string{"(*T).get": "inlined by the compiler", "leaf": "leaf:"}},
		{"compiler inlines nothing", map[string]bool{}, []string{"leaf", "caller", "big"},
			map[string]string{"(*T).get": "leaf:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := rewriteAndCheck(t, "example.com/p", map[string][]byte{"p.go": []byte(src)}, Config{Inlinable: tc.inlinable})
			var got []string
			for _, p := range out.Points {
				got = append(got, p.Func)
			}
			if fmt.Sprint(sortStrings(got)) != fmt.Sprint(sortStrings(tc.points)) {
				t.Errorf("points %v, want %v", got, tc.points)
			}
			for fn, reason := range tc.skipped {
				found := false
				for _, s := range out.Skipped {
					if s.Func == fn {
						found = strings.HasPrefix(s.Reason, reason)
						if !found {
							t.Errorf("%s skipped for %q, want %q...", fn, s.Reason, reason)
						}
					}
				}
				if !found {
					t.Errorf("%s not skipped", fn)
				}
			}
		})
	}
}

// TestPrologueLoads checks how prologues read the word: a plain compare by
// default (one instruction on amd64), sync/atomic with AtomicLoad (race
// builds), and never through a method call on the dormant path.
func TestPrologueLoads(t *testing.T) {
	src := "package p\n\nimport \"errors\"\n\nfunc f(n int) int {\n\tprintln()\n\treturn n\n}\n\nfunc g(n int) error {\n\tprintln()\n\tif n > 0 {\n\t\treturn errors.New(\"x\")\n\t}\n\treturn nil\n}\n"
	for _, tc := range []struct {
		name       string
		cfg        Config
		want, deny []string
	}{
		{"plain", Config{Budget: -1},
			[]string{"if _graft_p1.W >= _graft_rt.Sealed { return _graft_slow1(n) };", "if _graft_p2.W != 0 { _graft_w := _graft_p2.Load();"},
			[]string{"sync/atomic", "_graft_atomic"}},
		{"atomic", Config{Budget: -1, AtomicLoad: true},
			[]string{`import _graft_atomic "sync/atomic"`, "if _graft_atomic.LoadUint32(&_graft_p1.W) >= _graft_rt.Sealed {", "if _graft_w := _graft_atomic.LoadUint32(&_graft_p2.W); _graft_w != 0 {"},
			[]string{"_graft_p1.W >=", "_graft_p2.W != 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) { rewritesTo(t, src, tc.cfg, tc.want, tc.deny) })
	}
}

// rewritesTo rewrites the one-file package src with cfg and checks that
// its text contains every want and no deny.
func rewritesTo(t *testing.T, src string, cfg Config, want, deny []string) {
	t.Helper()
	out, _ := rewriteAndCheck(t, "example.com/p", map[string][]byte{"p.go": []byte(src)}, cfg)
	got := string(out.Files["p.go"])
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in\n%s", w, got)
		}
	}
	for _, d := range deny {
		if strings.Contains(got, d) {
			t.Errorf("unexpected %q in\n%s", d, got)
		}
	}
}

// TestSlowPathHiding: the slow path hides a pointer argument from escape
// analysis unless the plain build leaks it to the heap anyway, and it
// reads the replacement variable atomically in -race builds.
func TestSlowPathHiding(t *testing.T) {
	src := "package p\n\nfunc f(a *int, b *int) int {\n\tprintln()\n\treturn *a + *b\n}\n"
	for _, tc := range []struct {
		name       string
		cfg        Config
		want, deny []string
	}{
		{"hidden", Config{Budget: -1},
			[]string{"if _graft_f := _graft_f1; _graft_f != nil {", "return _graft_f(*(**int)(_graft_rt.NoEscape(_graft_rt.Pointer(&_graft_x0))), *(**int)(_graft_rt.NoEscape(_graft_rt.Pointer(&_graft_x1))))"},
			nil},
		{"leaking", Config{Budget: -1, Leaking: map[string]bool{"p.go:3:8": true}},
			[]string{"return _graft_f(_graft_x0, *(**int)(_graft_rt.NoEscape(_graft_rt.Pointer(&_graft_x1))))"},
			nil},
		{"atomic", Config{Budget: -1, AtomicLoad: true},
			[]string{"_graft_fp := _graft_rt.LoadSlot(_graft_rt.Pointer(&_graft_f1))", "if _graft_f := *(*_graft_t1)(_graft_rt.Pointer(&_graft_fp)); _graft_f != nil {"},
			[]string{"_graft_f := _graft_f1;"}},
	} {
		t.Run(tc.name, func(t *testing.T) { rewritesTo(t, src, tc.cfg, tc.want, tc.deny) })
	}
}

// TestExportsCompile: the export file's wrappers spell every signature so
// that the package still type-checks, with parameter types from packages
// two files import under one name, and call what they wrap.
func TestExportsCompile(t *testing.T) {
	srcs := map[string][]byte{
		"a.go": []byte(`package p

import (
	b "bytes"
	"strings"
)

type T struct{ n int }

func (t *T) init()                            { t.n = 1 }
func (t T) get(_ int, r *b.Reader) int        { return t.n + r.Len() }
func join(sep string, parts ...string) string { return strings.Join(parts, sep) }
func pair(b *strings.Builder) (int, error)    { return b.Len(), nil }
func noop(int, string)                        {}
`),
		"b.go": []byte(`package p

import strings "bytes"

func fill(b *strings.Buffer) (int, error) { return b.Len(), nil }
`),
	}
	in, err := check("example.com/p", srcs)
	if err != nil {
		t.Fatal(err)
	}
	exp := string(Exports(in))
	for _, want := range []string{
		`func GraftM_T_init(_graft_r *T) { _graft_r.init() }`,
		`func GraftM_T_get(_graft_r T, _graft_a0 int, _graft_a1 *_graft_i0.Reader) int { return _graft_r.get(_graft_a0, _graft_a1) }`,
		`func GraftF_join(_graft_a0 string, _graft_a1 ...string) string { return join(_graft_a0, _graft_a1...) }`,
		`func GraftF_pair(_graft_a0 *_graft_i1.Builder) (int, error) { return pair(_graft_a0) }`,
		`func GraftF_noop(_graft_a0 int, _graft_a1 string) { noop(_graft_a0, _graft_a1) }`,
		`func GraftF_fill(_graft_a0 *_graft_i0.Buffer) (int, error) { return fill(_graft_a0) }`,
	} {
		if !strings.Contains(exp, want) {
			t.Errorf("export file lacks %q:\n%s", want, exp)
		}
	}
	srcs["zz_graft_export.go"] = []byte(exp)
	if _, err := check("example.com/p", srcs); err != nil {
		t.Errorf("package with its export file does not type-check: %v\n%s", err, exp)
	}
}
