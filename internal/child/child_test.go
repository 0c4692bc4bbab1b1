package child

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// lines collects a process's output.
type lines struct {
	mu  sync.Mutex
	out []string
	ch  chan string // every line, as it comes
}

func newLines() *lines { return &lines{ch: make(chan string, 64)} }

func (l *lines) add(stream string, line []byte) {
	s := stream + ": " + string(line)
	l.mu.Lock()
	l.out = append(l.out, s)
	l.mu.Unlock()
	select {
	case l.ch <- s:
	default:
	}
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.out...)
}

func sh(script string) Options {
	return Options{Path: "/bin/sh", Argv: []string{"sh", "-c", script}, Env: []string{"PATH=" + os.Getenv("PATH")}}
}

// Run returns the exit status once the output is read, every line of it;
// stderr's last lines are kept.
func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  string
		wantErr string
		want    []string // lines of one stream keep their order
	}{
		{"ok", "echo one; echo two >&2; echo three", "", []string{"stdout: one", "stdout: three"}},
		{"exit", "echo bye >&2; exit 3", "exit status 3", []string{"stderr: bye"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLines()
			o := sh(tc.script)
			o.Line = l.add
			p, err := Start(o)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Run()
			if got := fmt.Sprint(err); (tc.wantErr == "" && err != nil) || (tc.wantErr != "" && got != tc.wantErr) {
				t.Errorf("Run = %v, want %q", err, tc.wantErr)
			}
			got := l.all()
			i := 0
			for _, g := range got {
				if i < len(tc.want) && g == tc.want[i] {
					i++
				}
			}
			if i != len(tc.want) {
				t.Errorf("output %q, want %q in order", got, tc.want)
			}
			for _, g := range got {
				if s, ok := strings.CutPrefix(g, "stderr: "); ok && !bytes.Contains(p.Stderr(), []byte(s+"\n")) {
					t.Errorf("Stderr() = %q lacks %q", p.Stderr(), s)
				}
			}
		})
	}
}

// Signal reaches the process group; Run reports the signal.
func TestSignal(t *testing.T) {
	l := newLines()
	o := sh("echo up; sleep 300")
	o.Line = l.add
	p, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run() }() // Run reads the output
	<-l.ch                          // it runs
	p.Signal(syscall.SIGTERM)
	if err := <-done; err == nil || err.Error() != "signal: terminated" {
		t.Errorf("Run = %v, want signal: terminated", err)
	}
}

// What the process leaves behind in its group is killed when it exits.
func TestStrayKilled(t *testing.T) {
	// The stray holds the write end of a pipe as its fd 3: the read end
	// sees EOF once it has died. Were it not killed, ReadAll would wait
	// for the test's timeout.
	if b, err := runWithFD3(t, "sleep 300 & echo started >&3"); err != nil || b != "started\n" {
		t.Errorf("fd 3 carried %q, %v", b, err)
	}
}

// Files become the child's descriptors 3, 4, ...
func TestFiles(t *testing.T) {
	if b, err := runWithFD3(t, "echo three >&3"); err != nil || b != "three\n" {
		t.Errorf("fd 3 carried %q, %v", b, err)
	}
}

// runWithFD3 runs script with the write end of a pipe as its fd 3 and
// returns what the read end got until EOF, which comes once every process
// holding the write end (the script and whatever it left behind) is gone.
func runWithFD3(t *testing.T, script string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o := sh(script)
	o.Files = []uintptr{w.Fd()}
	p, err := Start(o)
	w.Close() // the child has its copy
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	return string(b), err
}

// Stderr keeps the last 64 KiB.
func TestStderrTail(t *testing.T) {
	p, err := Start(sh("head -c 100000 /dev/zero | tr '\\0' x >&2; echo >&2; echo end >&2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	got := p.Stderr()
	if len(got) != tailCap || !bytes.HasSuffix(got, []byte("x\nend\n")) {
		t.Errorf("Stderr() holds %d bytes ending %q, want %d ending in the last lines", len(got), got[max(0, len(got)-8):], tailCap)
	}
}
