package patch

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/patch/plugingen"
	"github.com/graftdev/graft/internal/rewrite"
)

// The escape check. graft build passes the arguments of an instrumented
// function to its slow path through rt.NoEscape, so a caller may keep an
// argument on its stack whenever the original function does not keep it
// (docs/rt.md, "NoEscape"). A replacement that keeps such a pointer would
// read freed stack memory later: Make refuses it. The facts come from the
// compiler itself (-gcflags=pkg=-m) on both trees: the replacement's
// summary includes what every callee it reaches (changed or not) does.

// leak is what the compiler says one parameter's value flows to.
type leak struct {
	heap    bool           // "leaking param: p": p itself reaches the heap
	content bool           // "leaking param content: p": what p points to does
	results map[string]int // "leaking param: p to result ~rN level=L": result → smallest L
	name    string
}

// rank orders the kinds: none < to result < content < heap.
func (l leak) rank() int {
	switch {
	case l.heap:
		return 3
	case l.content:
		return 2
	case len(l.results) > 0:
		return 1
	}
	return 0
}

// keeps reports whether new keeps what old does not: the rule of
// docs/patch.md (a replacement's leak kind must not exceed the original's,
// and a leak to a result needs the original to leak to that same result,
// as deeply or deeper).
func keeps(old, new leak) bool {
	if old.heap {
		return false
	}
	if new.rank() > old.rank() {
		return true
	}
	if new.heap || new.content && !old.content {
		return true
	}
	for r, lvl := range new.results {
		ol, ok := old.results[r]
		if !ok || ol > lvl {
			return true
		}
	}
	return false
}

// param is one parameter (the receiver first) of a replaced function.
type param struct {
	name string
	pos  token.Position
	ptrs bool // its type holds pointers: NoEscape hides it
}

// key is the parameter's key in the compiler's facts (escapes).
func (p param) key() string {
	return fmt.Sprintf("%s:%d:%d %s", filepath.Clean(p.pos.Filename), p.pos.Line, p.pos.Column, p.name)
}

// fnParams returns the parameters of function id in tree t and the
// names of its results (by index), or nil when t does not declare it.
func fnParams(t *Tree, id string) ([]param, []string, bool) {
	for path, p := range t.Pkgs {
		if !strings.HasPrefix(id, path+".") {
			continue
		}
		for _, f := range p.Syntax {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok {
					continue
				}
				if obj, _ := p.TypesInfo.Defs[fd.Name].(*types.Func); obj == nil || plugingen.FuncID(obj) != id {
					continue
				}
				var ps []param
				for _, fl := range []*ast.FieldList{fd.Recv, fd.Type.Params} {
					if fl == nil {
						continue
					}
					for _, field := range fl.List {
						// What graft build passed through NoEscape; an
						// unknown type counts as holding pointers.
						t := p.TypesInfo.TypeOf(field.Type)
						ptrs := t == nil || !rewrite.PointerFree(t)
						for _, n := range field.Names {
							if n.Name == "_" {
								continue // the body cannot name it: it cannot keep it
							}
							ps = append(ps, param{name: n.Name, pos: p.Fset.PositionFor(n.Pos(), false), ptrs: ptrs})
						}
					}
				}
				var results []string
				if fd.Type.Results != nil {
					for _, field := range fd.Type.Results.List {
						if len(field.Names) == 0 {
							results = append(results, "")
						}
						for _, n := range field.Names {
							results = append(results, n.Name)
						}
					}
				}
				return ps, results, true
			}
		}
	}
	return nil, nil, false
}

var escLine = regexp.MustCompile(`^(.+?):(\d+):(\d+): (?:leaking param( content)?: (\S+)(?: to result (\S+) level=(\d+))?|(\S+) does not escape)$`)

// escapes compiles pkgs of tree t with -m and returns the parameter facts
// by "file:line:col name" (file absolute).
func escapes(ctx context.Context, t *Tree, lo LoadOptions, pkgs []string) (map[string]*leak, error) {
	args := []string{"build", "-o", os.DevNull}
	for _, p := range pkgs {
		args = append(args, "-gcflags="+p+"=-m")
	}
	env := append(os.Environ(), "GOWORK=off")
	if lo.ModMod {
		env = append(env, "GOFLAGS=-mod=mod")
	}
	env = append(env, lo.Env...)
	if len(lo.Replace) > 0 {
		tmp, err := os.MkdirTemp("", "graft-escape-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		modf, err := replacedModfile(t.Dir, tmp, lo.Replace)
		if err != nil {
			return nil, err
		}
		args = append(args, "-modfile="+modf)
		if !lo.ModMod {
			env = append(env, "GOFLAGS=-mod=mod")
		}
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkgs...)...)
	cmd.Dir, cmd.Env = t.Dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go build -gcflags=-m: %w: %s", err, firstLines(out, 5))
	}
	facts := map[string]*leak{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := escLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		file := m[1]
		if !filepath.IsAbs(file) {
			file = filepath.Join(t.Dir, file)
		}
		name := m[5]
		if name == "" {
			name = m[8]
		}
		key := fmt.Sprintf("%s:%s:%s %s", filepath.Clean(file), m[2], m[3], name)
		l := facts[key]
		if l == nil {
			l = &leak{name: name, results: map[string]int{}}
			facts[key] = l
		}
		switch {
		case m[8] != "":
			// does not escape
		case m[4] != "":
			l.content = true
		case m[6] != "":
			lvl, _ := strconv.Atoi(m[7])
			if old, ok := l.results[m[6]]; !ok || lvl < old {
				l.results[m[6]] = lvl
			}
		default:
			l.heap = true
		}
	}
	return facts, nil
}

// normalize keys results by index ("0"), whether the compiler spelled them
// ~r0 or by name.
func (l *leak) normalize(results []string) {
	out := map[string]int{}
	for k, lvl := range l.results {
		if n, ok := strings.CutPrefix(k, "~r"); ok {
			k = n
		} else if i := slices.Index(results, k); i >= 0 {
			k = strconv.Itoa(i)
		}
		if old, ok := out[k]; !ok || lvl < old {
			out[k] = lvl
		}
	}
	l.results = out
}

// String spells the strongest fact as the compiler does.
func (l leak) String() string {
	switch {
	case l.heap:
		return "leaking param: " + l.name
	case l.content:
		return "leaking param content: " + l.name
	}
	for _, k := range slices.Sorted(maps.Keys(l.results)) {
		return fmt.Sprintf("leaking param: %s to result %s level=%d", l.name, k, l.results[k])
	}
	return l.name + " does not escape"
}

func firstLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "; ")
}

// checkEscapes refuses, in r, every slot whose replacement keeps a pointer
// parameter the original does not keep, or whose facts the compiler did
// not give: it compiles the slots' packages of each tree (loaded with
// oldLo and newLo) with -m once. It reports whether r is still admitted.
func checkEscapes(ctx context.Context, old, new *Tree, oldLo, newLo LoadOptions, r *api.PatchReport) bool {
	pkgsOf := func(t *Tree) []string {
		var out []string
		for _, id := range r.Slots {
			for path := range t.Pkgs {
				if strings.HasPrefix(id, path+".") && !slices.Contains(out, path) {
					out = append(out, path)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	refuse := func(id, format string, args ...any) {
		reason := fmt.Sprintf(format, args...)
		r.Admitted = false
		for i, c := range r.Changes {
			if c.ID == id && (c.Kind == api.PatchFunc || c.Kind == api.PatchCaller) {
				r.Changes[i].Admitted, r.Changes[i].Reason = false, reason
				return
			}
		}
		r.Changes = append(r.Changes, api.PatchChange{ID: id, Kind: api.PatchCaller, Change: api.Changed, Reason: reason})
	}
	oldFacts, oerr := escapes(ctx, old, oldLo, pkgsOf(old))
	newFacts, nerr := escapes(ctx, new, newLo, pkgsOf(new))
	for _, id := range r.Slots {
		short := shortID(id)
		if oerr != nil || nerr != nil {
			refuse(id, "%s: no escape summary (the compiler's -m output is needed to check the patch keeps no argument the original does not): %v", short, cmpErr(oerr, nerr))
			continue
		}
		ops, ores, ok1 := fnParams(old, id)
		nps, nres, ok2 := fnParams(new, id)
		if !ok1 || !ok2 || len(ops) != len(nps) {
			refuse(id, "%s: no escape summary: cannot match the parameters of the two versions", short)
			continue
		}
		for i, np := range nps {
			op := ops[i]
			if !np.ptrs && !op.ptrs {
				continue
			}
			ol, nl := oldFacts[op.key()], newFacts[np.key()]
			if ol == nil || nl == nil {
				refuse(id, "%s: no escape summary for parameter %s: the compiler printed none", short, np.name)
				break
			}
			ol.normalize(ores)
			nl.normalize(nres)
			if keeps(*ol, *nl) {
				refuse(id, "%s: the patch keeps parameter %s (%s), which the original does not keep; callers may have it on their stack", short, np.name, nl)
				break
			}
		}
	}
	return r.Admitted
}

func cmpErr(a, b error) error {
	if a != nil {
		return fmt.Errorf("old tree: %w", a)
	}
	return fmt.Errorf("new tree: %w", b)
}

// shortID drops the import path from a point id: (*T).f.
func shortID(id string) string {
	i := strings.LastIndex(id, "/")
	rest := id[i+1:]
	if _, after, ok := strings.Cut(rest, "."); ok {
		return after
	}
	return rest
}
