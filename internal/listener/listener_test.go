package listener

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftdev/graft/internal/listener/listenertest"
)

func TestMain(m *testing.M) {
	MaybeShim()
	os.Exit(m.Run())
}

func FuzzParseListen(f *testing.F) {
	for _, s := range []string{"http=127.0.0.1:8080", "a=unix:/tmp/x.sock", "=:80", "x=", "x=host", "x=:99999", "a:b=1.2.3.4:5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := Parse(s)
		if err != nil {
			return
		}
		if sp.Name == "" || sp.Addr == "" || strings.ContainsAny(sp.Name, ":=") || sp.Name+"="+sp.Addr != s {
			t.Errorf("Parse(%q) = %+v", s, sp)
		}
	})
}

// Through either shim, the program started sees LISTEN_PID equal to its
// own pid, and its arguments intact.
func TestShim(t *testing.T) {
	for _, tc := range []struct {
		name string
		argv func(path string, argv []string) []string
		self bool // the test binary re-executes itself
	}{
		{"self", ShimArgv, true},
		{"shell", ShellShimArgv, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := tc.argv("/bin/sh", []string{"sh", "-c", `echo "$LISTEN_PID $$ $1"`, "sh", "a b"})
			if self := argv[0] != "/bin/sh"; self != tc.self {
				t.Fatalf("argv %q: re-executes this binary = %v, want %v", argv, self, tc.self)
			}
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "LISTEN_PID=1")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%q: %v", argv, err)
			}
			f := strings.SplitN(strings.TrimSpace(string(out)), " ", 3)
			if len(f) != 3 || f[0] != f[1] || f[2] != "a b" {
				t.Errorf("child printed %q, want LISTEN_PID = its pid and argument %q", out, "a b")
			}
		})
	}
}

// A unix socket file nothing answers on is removed; one that answers, or a
// file that is not a socket, is left alone.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	live := filepath.Join(dir, "live.sock")
	ll, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		path     string
		wantErr  bool
		wantGone bool
	}{
		{"missing", filepath.Join(dir, "none"), false, true},
		{"stale", stale, false, true},
		{"answers", live, true, false},
		{"not a socket", plain, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := RemoveStale(tc.path)
			if (err != nil) != tc.wantErr {
				t.Errorf("RemoveStale: %v, want error %v", err, tc.wantErr)
			}
			if tc.path == live && !errors.Is(err, ErrInUse) {
				t.Errorf("RemoveStale of a socket that answers: %v, want ErrInUse", err)
			}
			_, serr := os.Lstat(tc.path)
			if gone := errors.Is(serr, os.ErrNotExist); gone != tc.wantGone {
				t.Errorf("file gone = %v, want %v", gone, tc.wantGone)
			}
		})
	}
}

// Open adopts an inherited socket by name and binds the rest; Activation
// lists them in --listen order; Close removes the unix socket file.
func TestOpenAndActivation(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) {
			f, addr := listenertest.InheritedTCP(t)
			path := filepath.Join(t.TempDir(), "local.sock")
			ls, err := Open([]Spec{{Name: "local", Addr: "unix:" + path}, {Name: "web", Addr: "127.0.0.1:1"}},
				[]Inherited{{Name: "web", File: f}}, raw)
			if err != nil {
				t.Fatal(err)
			}
			if ls[1].Addr() != addr || ls[0].Addr() != "unix:"+path || ls[0].Name() != "local" {
				t.Errorf("listeners at %s %s, want unix:%s and the inherited %s", ls[0].Addr(), ls[1].Addr(), path, addr)
			}
			if (ls[0].Net() == nil) != raw {
				t.Errorf("Net() = %v", ls[0].Net())
			}
			fds, env := Activation(ls)
			if len(fds) != 2 || strings.Join(env, " ") != "LISTEN_FDS=2 LISTEN_FDNAMES=local:web" {
				t.Errorf("Activation = %v %q", fds, env)
			}
			// The adopted socket still accepts.
			if c, err := net.Dial("tcp", addr); err != nil {
				t.Errorf("dial the adopted socket: %v", err)
			} else {
				c.Close()
			}
			for _, l := range ls {
				l.Close()
			}
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("unix socket file left behind: %v", err)
			}
		})
	}
}
