package instrument

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// inlinable asks the compiler which functions of the packages it inlines in
// the plain build: `go list -export -gcflags=PKG=-m` compiles them
// (unrewritten; go's build cache keeps and replays the compiler's output)
// and prints "FILE:LINE:COL: can inline NAME" under a "# PKG" header. The
// rewriter leaves those functions without a patch point: the prologue
// would stop the inlining, which costs far more than the point is worth
// (docs/build.md). The result maps import path → function names as the
// compiler prints them ("F", "T.M", "(*T).M"), which is how the manifest
// names functions too.
func (p *prep) inlinable(ctx context.Context, sel []string, paths []string) (map[string]map[string]bool, error) {
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
		return nil, fmt.Errorf("ask the compiler what it inlines: %w: %s", err, strings.TrimSpace(lastLines(errb.String(), 5)))
	}
	return parseInlinable(errb.String(), paths), nil
}

// parseInlinable reads the compiler's -m output of the packages in paths.
func parseInlinable(out string, paths []string) map[string]map[string]bool {
	want := map[string]bool{}
	for _, path := range paths {
		want[path] = true
	}
	res := map[string]map[string]bool{}
	var cur map[string]bool
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
					res[pkg] = map[string]bool{}
				}
				cur = res[pkg]
			}
			continue
		}
		if cur == nil {
			continue
		}
		_, rest, ok := strings.Cut(line, ": can inline ")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, " ")
		cur[name] = true
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
