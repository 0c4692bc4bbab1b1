package instrument

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// listPkg is what graft needs of `go list -json`.
type listPkg struct {
	ImportPath string
	Dir        string
	Name       string
	GoFiles    []string
	CgoFiles   []string
	Imports    []string
	Standard   bool
	ForTest    string
	Module     *struct {
		Path    string
		Version string
		Main    bool
		Dir     string
		GoMod   string
		Replace *struct {
			Path    string
			Version string
			Dir     string
		}
	}
	Error *struct{ Err string }
}

// goCmd runs the go command and returns its stdout; stderr goes into the
// error.
func (p *prep) goCmd(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, p.goTool, args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

func (p *prep) list(ctx context.Context, flags []string, patterns []string, deps, test bool) ([]*listPkg, error) {
	args := []string{"list", "-e", "-json=ImportPath,Dir,Name,GoFiles,CgoFiles,Imports,Standard,ForTest,Module,Error"}
	if deps {
		args = append(args, "-deps")
	}
	if test {
		args = append(args, "-test")
	}
	args = append(args, flags...)
	args = append(args, "--")
	args = append(args, patterns...)
	out, err := p.goCmd(ctx, args...)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var pkgs []*listPkg
	for {
		lp := new(listPkg)
		if err := dec.Decode(lp); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list: decode: %w", err)
		}
		pkgs = append(pkgs, lp)
	}
	return pkgs, nil
}
