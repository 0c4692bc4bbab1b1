package live

import (
	"net"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func fakeEnv(vars map[string]string) osEnv {
	return osEnv{
		getenv:   func(k string) string { return vars[k] },
		unsetenv: func(k string) error { delete(vars, k); return nil },
		getpid:   func() int { return 4242 },
	}
}

func TestParseListenFDs(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    []inheritedFD
		wantErr bool
	}{
		{name: "none", env: map[string]string{}},
		{name: "named", env: map[string]string{"LISTEN_FDS": "2", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "web:admin"},
			want: []inheritedFD{{"web", 3}, {"admin", 4}}},
		{name: "unnamed", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "4242"},
			want: []inheritedFD{{"unknown", 3}}},
		{name: "meant for another process", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "1"}},
		{name: "bad count", env: map[string]string{"LISTEN_FDS": "x", "LISTEN_PID": "4242"}, wantErr: true},
		{name: "bad pid", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "me"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseListenFDs(func(k string) string { return tt.env[k] }, 4242)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewUnsetsProtocolVariables(t *testing.T) {
	env := map[string]string{"LISTEN_FDS": "0", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "", "NOTIFY_SOCKET": "/nonexistent", "GRAFT_GENERATION": "7", "OTHER": "kept"}
	g := newGen(Options{NoSignals: true}, fakeEnv(env))
	if g.Generation() != 7 {
		t.Fatalf("generation %d, want 7", g.Generation())
	}
	for _, k := range []string{"LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s still set: children would inherit it", k)
		}
	}
	if env["OTHER"] != "kept" {
		t.Error("unrelated variable removed")
	}
}

func TestListenTakesInheritedSocketsByName(t *testing.T) {
	if os.Getenv("LIVE_INHERIT_CHILD") == "1" {
		return // only meaningful in the parent
	}
	// Two real listening sockets at fds 3 and 4, as a supervisor passes them:
	// only possible in a fresh process, so run this test binary again.
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fa, _ := a.(*net.TCPListener).File()
	fb, _ := b.(*net.TCPListener).File()
	defer fa.Close()
	defer fb.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestInheritChild$", "-test.v")
	cmd.ExtraFiles = []*os.File{fa, fb}
	cmd.Env = append(os.Environ(), "LIVE_INHERIT_CHILD=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=web:admin",
		"LIVE_WANT_WEB="+a.Addr().String(), "LIVE_WANT_ADMIN="+b.Addr().String())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS: TestInheritChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestInheritChild runs in the child of TestListenTakesInheritedSocketsByName.
func TestInheritChild(t *testing.T) {
	if os.Getenv("LIVE_INHERIT_CHILD") != "1" {
		t.Skip("run by TestListenTakesInheritedSocketsByName")
	}
	env := realEnv()
	env.getpid = func() int { return os.Getpid() }
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	g := newGen(Options{NoSignals: true}, env)
	if got := g.Inherited(); !reflect.DeepEqual(got, []string{"web", "admin"}) {
		t.Fatalf("Inherited() = %v", got)
	}
	if os.Getenv("LISTEN_FDS") != "" {
		t.Fatal("LISTEN_FDS still set after New")
	}
	ln, err := g.Listen("admin", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if ln.Addr().String() != os.Getenv("LIVE_WANT_ADMIN") {
		t.Fatalf("admin listener at %s, want the inherited %s", ln.Addr(), os.Getenv("LIVE_WANT_ADMIN"))
	}
	if err := g.Ready(); err != nil {
		t.Fatal(err)
	}
	// "web" was not claimed: Ready closed fd 3.
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, 3, syscall.F_GETFD, 0); errno != syscall.EBADF {
		t.Fatalf("unclaimed inherited fd 3 still open after Ready (errno %v)", errno)
	}
	g.Drain(0)
	g.Close()
}
