// Package rewrite is graft's source-to-source rewriter: given a
// type-checked package, it inserts one patch point per function and latent
// check sites, as text edits that never add or remove a line, so file:line
// in panics and stack traces stay those of the original source. Generated
// declarations are appended after the last line of each file. The edits and
// the generated code are described in docs/rt.md.
package rewrite

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"sort"
	"strconv"
	"strings"

	"github.com/graftdev/graft/api"
)

// Version identifies the rewriter's output; it is part of every build id
// and cache key, and changes whenever generated code changes.
const Version = "graft-rewrite-7"

// RTImport is the import path of the runtime generated code calls.
const RTImport = "github.com/graftdev/graft/rt"

// DefaultBudget is the default inlinable-leaf budget: a function whose body
// has at most this many syntax nodes and calls nothing but builtins and
// conversions is probably inlined by the gc compiler (whose own budget is
// 80 IR nodes), so it gets no patch point; its callers are patched instead.
const DefaultBudget = 40

// Config tunes the rewrite; the zero value is the default.
type Config struct {
	Budget  int  // inlinable-leaf budget in syntax nodes; 0: DefaultBudget, < 0: instrument every function
	NoSites bool // patch points only
	// Inlinable, when not nil, names the package's functions ("F",
	// "T.M", "(*T).M") that the gc compiler inlines in the plain build
	// (its -m output): they get no patch point, since a prologue would
	// stop the inlining, and the leaf heuristic (Budget) is not used.
	// Ignored when Budget < 0.
	Inlinable map[string]bool `json:"-"`
	// Leaking, when not nil, holds the positions ("FILE.go:LINE:COL",
	// the base name) of the parameters that escape analysis leaks to the
	// heap in the plain build ("leaking param: x"). A patched call passes
	// those to its replacement as they are: hiding one from escape
	// analysis (rt.NoEscape on its address, which keeps it in memory:
	// a store and a reload per call) would save its callers nothing.
	Leaking map[string]bool `json:"-"`
	// AtomicLoad makes prologues read the word with sync/atomic instead
	// of a plain load. A plain load compiles to one compare with memory
	// and a branch (an atomic load to a load, a test and a branch); it is
	// a benign race by the Go memory model (a word-sized read observes
	// some value written), but the race detector reports it, so builds
	// with -race set this.
	AtomicLoad bool
}

// Input is one type-checked package.
type Input struct {
	PkgPath string
	Fset    *token.FileSet
	Files   []*ast.File       // the files to rewrite (a subset of the package's files is fine)
	Src     map[string][]byte // file name → the exact source the file was parsed from
	Info    *types.Info       // Types, Defs, Uses, Selections at least
}

// Output is the rewritten package.
type Output struct {
	Files   map[string][]byte // changed files only, by file name
	Points  []api.Point
	Skipped []api.Skipped
	Sites   []api.Site
}

// Package rewrites in's files. It returns an error only for inputs it cannot
// read (a file without source); anything it cannot instrument safely it
// leaves alone and lists in Skipped.
func Package(in Input, cfg Config) (*Output, error) {
	if cfg.Budget == 0 {
		cfg.Budget = DefaultBudget
	}
	files := append([]*ast.File(nil), in.Files...)
	sort.Slice(files, func(i, j int) bool {
		return in.Fset.File(files[i].Pos()).Name() < in.Fset.File(files[j].Pos()).Name()
	})
	r := &rewriter{in: in, cfg: cfg, out: &Output{Files: map[string][]byte{}}, idPrefix: in.PkgPath}
	if len(files) > 0 && files[0].Name.Name == "main" {
		// Runtime frames name package main's functions "main.F".
		r.idPrefix = "main"
	}
	for _, f := range files {
		name := in.Fset.File(f.Pos()).Name()
		src, ok := in.Src[name]
		if !ok {
			return nil, fmt.Errorf("rewrite %s: no source for %s", in.PkgPath, name)
		}
		if b := r.file(f, name, src); b != nil {
			r.out.Files[name] = b
		}
	}
	return r.out, nil
}

type rewriter struct {
	in  Input
	cfg Config
	out *Output
	n   int // package-wide counter for generated names
	// idPrefix starts point ids: the import path, or "main".
	idPrefix string
}

// fileState collects one file's edits and appended declarations.
type fileState struct {
	name  string
	src   []byte
	tf    *token.File
	edits []edit
	tail  bytes.Buffer // appended after the last line
	// registered: sites were registered without edits in the body (the
	// file still needs the import and init).
	registered bool
	// atomic: a prologue of the file loads its word with sync/atomic.
	atomic bool
	inits  bytes.Buffer // statements of the appended init function
}

// edit is a replacement of src[off:end] (end == off: an insertion).
type edit struct {
	off, end int
	text     string
	class    int // at equal offsets: 0 closes (inner first), 1 replaces, 2 opens (outer first), -1 statements at a block start
	span     int // length of the wrapped node
	seq      int
}

func (fs *fileState) off(p token.Pos) int { return fs.tf.Offset(p) }

func (fs *fileState) text(n ast.Node) string {
	return string(fs.src[fs.off(n.Pos()):fs.off(n.End())])
}

func (fs *fileState) add(e edit) {
	e.seq = len(fs.edits)
	fs.edits = append(fs.edits, e)
}

// wrap inserts pre before n and post after it.
func (fs *fileState) wrap(n ast.Node, pre, post string) {
	s, e := fs.off(n.Pos()), fs.off(n.End())
	fs.add(edit{off: s, end: s, text: pre, class: 2, span: e - s})
	fs.add(edit{off: e, end: e, text: post, class: 0, span: e - s})
}

func (r *rewriter) file(f *ast.File, name string, src []byte) []byte {
	for _, im := range f.Imports {
		if p, _ := strconv.Unquote(im.Path.Value); p == "C" {
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok {
					r.skip(fd, name, "cgo file")
				}
			}
			return nil
		}
	}
	fs := &fileState{name: name, src: src, tf: r.in.Fset.File(f.Pos())}
	if fs.tf.Size() != len(src) {
		return nil
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			r.funcDecl(fs, d)
			if d.Recv == nil && d.Type.TypeParams == nil && d.Name.Name != "init" && d.Name.Name != "_" && !hasDirective(d, "linkname") {
				fmt.Fprintf(&fs.inits, "\t_graft_rt.Sym(%q, %q, %s)\n", r.in.PkgPath, d.Name.Name, d.Name.Name)
			}
		case *ast.GenDecl:
			if d.Tok != token.VAR {
				continue
			}
			for _, spec := range d.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if id.Name != "_" {
						fmt.Fprintf(&fs.inits, "\t_graft_rt.Sym(%q, %q, &%s)\n", r.in.PkgPath, id.Name, id.Name)
					}
				}
			}
		}
	}
	if len(fs.edits) == 0 && fs.inits.Len() == 0 && !fs.registered {
		return nil
	}
	// The import goes on the package clause's line so no line moves.
	pe := fs.off(f.Name.End())
	imp := `; import _graft_rt "` + RTImport + `"`
	if fs.atomic {
		imp += `; import _graft_atomic "sync/atomic"`
	}
	fs.add(edit{off: pe, end: pe, text: imp, class: -1})
	return fs.apply()
}

func (fs *fileState) apply() []byte {
	sort.SliceStable(fs.edits, func(i, j int) bool {
		a, b := fs.edits[i], fs.edits[j]
		if a.off != b.off {
			return a.off < b.off
		}
		if a.class != b.class {
			return a.class < b.class
		}
		switch a.class {
		case 0:
			if a.span != b.span {
				return a.span < b.span
			}
		case 2:
			if a.span != b.span {
				return a.span > b.span
			}
		}
		return a.seq < b.seq
	})
	var out bytes.Buffer
	out.Grow(len(fs.src) + len(fs.edits)*40 + fs.tail.Len() + fs.inits.Len() + 64)
	last := 0
	for _, e := range fs.edits {
		if e.off < last {
			continue // overlapping replacement: cannot happen for edits made here
		}
		out.Write(fs.src[last:e.off])
		out.WriteString(e.text)
		last = e.end
	}
	out.Write(fs.src[last:])
	if n := out.Len(); n > 0 && out.Bytes()[n-1] != '\n' {
		out.WriteByte('\n')
	}
	out.WriteString("\n// Code below generated by graft build. DO NOT EDIT.\n")
	out.Write(fs.tail.Bytes())
	if fs.inits.Len() > 0 {
		out.WriteString("func init() {\n")
		out.Write(fs.inits.Bytes())
		out.WriteString("}\n")
	}
	return out.Bytes()
}

func (r *rewriter) skip(fd *ast.FuncDecl, file, reason string) {
	id, fn := r.funcID(fd)
	tf := r.in.Fset.File(fd.Pos())
	r.out.Skipped = append(r.out.Skipped, api.Skipped{ID: id, Package: r.in.PkgPath, Func: fn,
		File: file, Line: tf.Line(fd.Pos()), EndLine: tf.Line(fd.End()), Reason: reason})
}

// funcID returns the point id (as runtime frames print the function) and
// the function's name within its package.
func (r *rewriter) funcID(fd *ast.FuncDecl) (id, fn string) {
	fn = fd.Name.Name
	if fd.Recv != nil && len(fd.Recv.List) == 1 {
		t := fd.Recv.List[0].Type
		for {
			p, ok := t.(*ast.ParenExpr)
			if !ok {
				break
			}
			t = p.X
		}
		star := false
		if s, ok := t.(*ast.StarExpr); ok {
			star, t = true, s.X
		}
		switch x := t.(type) {
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		}
		tn := "?"
		if id, ok := t.(*ast.Ident); ok {
			tn = id.Name
		}
		if star {
			fn = "(*" + tn + ")." + fn
		} else {
			fn = tn + "." + fn
		}
	}
	return r.idPrefix + "." + fn, fn
}

func hasDirective(fd *ast.FuncDecl, name string) bool {
	if fd.Doc == nil {
		return false
	}
	for _, c := range fd.Doc.List {
		if strings.HasPrefix(c.Text, "//go:"+name) {
			return true
		}
	}
	return false
}

// unsafeDirectives mark functions whose prologue must not grow or call
// anything (runtime-like code), or whose symbol is bound elsewhere.
var unsafeDirectives = []string{"nosplit", "noescape", "linkname", "systemstack", "nowritebarrier", "norace", "nocheckptr", "uintptrescapes", "yeswritebarrierrec", "cgo_"}

// siteHash names a node by kind and its path of child indices below the
// function body: stable under edits outside the function.
func siteHash(kind string, path []int) string {
	var b strings.Builder
	b.WriteString(kind)
	for _, i := range path {
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(i))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:4])
}
