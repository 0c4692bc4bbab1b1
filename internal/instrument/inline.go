package instrument

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// compilerFacts asks the compiler about the plain build of the packages:
// `go list -export -gcflags=PKG=-m` compiles them (unrewritten; go's build
// cache keeps and replays the compiler's output) and prints, under a
// "# PKG" header, "FILE:LINE:COL: can inline NAME" and, from escape
// analysis, "FILE:LINE:COL: leaking param: NAME" for each parameter that
// leaks to the heap. The rewriter leaves inlined functions without a patch
// point: the prologue would stop the inlining, which costs far more than
// the point is worth (docs/build.md). And a patched call passes a leaking
// parameter to its replacement as it is, where it would otherwise hide
// it from escape analysis at the price of keeping it in memory.
func (p *prep) compilerFacts(ctx context.Context, sel []string, paths []string) (map[string]*pkgFacts, error) {
	args := []string{"list", "-e", "-export", "-f", "{{.ImportPath}}"}
	args = append(args, sel...)
	for _, path := range paths {
		args = append(args, "-gcflags="+path+"=-m")
	}
	args = append(args, "--")
	args = append(args, paths...)
	cmd := exec.CommandContext(ctx, p.goTool, args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ask the compiler what it inlines and what escapes: %w: %s", err, strings.TrimSpace(lastLines(errb.String(), 5)))
	}
	return parseFacts(errb.String(), paths), nil
}

// pkgFacts is what the compiler says about one package's plain build.
type pkgFacts struct {
	// Inlinable names its inlined functions as the compiler prints them
	// ("F", "T.M", "(*T).M"), which is how the manifest names functions
	// too.
	Inlinable map[string]bool
	// Leaking holds "FILE.go:LINE:COL" (the base name) of the parameters
	// that leak to the heap.
	Leaking map[string]bool
}

// parseFacts reads the compiler's -m output of the packages in paths.
func parseFacts(out string, paths []string) map[string]*pkgFacts {
	want := map[string]bool{}
	for _, path := range paths {
		want[path] = true
	}
	res := map[string]*pkgFacts{}
	var cur *pkgFacts
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if pkg, ok := strings.CutPrefix(line, "# "); ok {
			// "# path" or, for a test variant, "# path [path.test]":
			// only the package itself is rewritten.
			cur = nil
			if want[pkg] {
				if res[pkg] == nil {
					res[pkg] = &pkgFacts{Inlinable: map[string]bool{}, Leaking: map[string]bool{}}
				}
				cur = res[pkg]
			}
			continue
		}
		if cur == nil {
			continue
		}
		if _, rest, ok := strings.Cut(line, ": can inline "); ok {
			name, _, _ := strings.Cut(rest, " ")
			cur.Inlinable[name] = true
			continue
		}
		// "leaking param: x" alone is a leak to the heap; "... to result
		// ~r0 level=0" and "leaking param content: x" are not.
		if pos, name, ok := strings.Cut(line, ": leaking param: "); ok && !strings.Contains(name, " ") {
			cur.Leaking[filepath.Base(pos)] = true
		}
	}
	return res
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
