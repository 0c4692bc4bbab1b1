package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/cli.md from the commands' help")

// TestCLIReference keeps docs/cli.md equal to what `graft COMMAND --help`
// prints, so the reference never drifts from the code.
func TestCLIReference(t *testing.T) {
	var doc bytes.Buffer
	doc.WriteString("# graft command reference\n\n")
	doc.WriteString("Generated from `graft COMMAND --help` by `go test ./internal/cli -run TestCLIReference -update`; do not edit by hand.\n")
	doc.WriteString("JSON output formats are described in [api.md](api.md).\n\n")
	doc.WriteString("```\n" + helpOf(t, nil) + "```\n")
	for _, name := range order {
		fmt.Fprintf(&doc, "\n## graft %s\n\n```\n%s```\n", name, helpOf(t, []string{name, "--help"}))
	}
	path := filepath.Join("..", "..", "docs", "cli.md")
	if *update {
		if err := os.WriteFile(path, doc.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, doc.Bytes()) {
		t.Errorf("docs/cli.md is stale; run go test ./internal/cli -run TestCLIReference -update")
	}
}

func helpOf(t *testing.T, args []string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if args == nil {
		args = []string{"--help"}
	}
	// A fixed environment keeps per-user defaults out of the reference.
	getenv := func(k string) string {
		if k == "XDG_RUNTIME_DIR" {
			return "$XDG_RUNTIME_DIR"
		}
		return ""
	}
	if err := run(context.Background(), &Env{Stdout: &out, Stderr: &errOut, Getenv: getenv}, args); err != nil {
		t.Fatalf("graft %s: %v (stderr: %s)", strings.Join(args, " "), err, errOut.String())
	}
	if out.Len() == 0 {
		t.Fatalf("graft %s printed no help", strings.Join(args, " "))
	}
	return out.String()
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	err := Run(context.Background(), []string{"frobnicate"}, &out, &errOut)
	if !errors.Is(err, ErrUsage) {
		t.Fatalf("err = %v, want ErrUsage", err)
	}
	if !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Errorf("stderr does not name the command: %q", errOut.String())
	}
}

func TestBadFlagIsAUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	err := Run(context.Background(), []string{"demo", "--no-such-flag"}, &out, &errOut)
	if !errors.Is(err, ErrUsage) {
		t.Fatalf("err = %v, want ErrUsage", err)
	}
	if !strings.Contains(errOut.String(), "no-such-flag") {
		t.Errorf("stderr does not name the flag: %q", errOut.String())
	}
}
