package supervisor

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/listener/listenertest"
	"github.com/graftdev/graft/internal/loadtest"
)

// The real graft binary, socket-activated the way systemd would start it
// (LISTEN_FDS with its own pid, NOTIFY_SOCKET), driven by its CLI: READY=1
// once serving, upgrade under load, a failed upgrade, status --json,
// rollback, clean exit on SIGTERM.
func TestGraftBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/graft")
	}
	dir := t.TempDir()
	graft := filepath.Join(dir, "graft")
	if out, err := exec.Command("go", "build", "-o", graft, "../../cmd/graft").CombinedOutput(); err != nil {
		t.Fatalf("build graft: %v\n%s", err, out)
	}
	lf, addr := listenertest.InheritedTCP(t)
	url := "http://" + addr + "/"
	notifyPath := filepath.Join(dir, "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sock := filepath.Join(dir, "run", "admin.sock")

	var logs bytes.Buffer
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web exec "$0" "$@"`,
		graft, "run", "--admin", sock, "--listen", "web=127.0.0.1:1", "--probation", "5s", "--drain", "5s", "--", fixture, "-version", "1")
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("graft output:\n%s", logs.String())
		}
	}()

	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 64)
	n, err := nc.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("graft's READY=1: %q %v", buf[:n], err)
	}

	graftCLI := func(args ...string) (string, error) {
		c := exec.Command(graft, args...)
		c.Env = append(os.Environ(), "GRAFT_ADMIN="+sock)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	l := loadtest.Start(t.Context(), loadtest.Options{URL: url, KeepAlive: 8, Fresh: 1})
	h := &harness{t: t}
	h.waitRequests(l, 50)
	out, err := graftCLI("upgrade", "--", fixture, "-version", "2")
	if err != nil || !strings.Contains(out, "generation 2 serves") {
		t.Fatalf("graft upgrade: %v\n%s", err, out)
	}
	h.waitRequests(l, 100)
	out, err = graftCLI("upgrade", "--", filepath.Join(dir, "missing-binary"))
	if err == nil || !strings.Contains(out, "no such file") {
		t.Errorf("upgrade to a missing binary: %v\n%s", err, out)
	}
	h.waitRequests(l, 100)
	out, err = graftCLI("status", "--json")
	if err != nil {
		t.Fatalf("graft status: %v\n%s", err, out)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Version != 1 || st.Serving != 2 || st.Listeners[0].Name != "web" {
		t.Errorf("status --json = %+v, %v\n%s", st, err, out)
	}
	out, err = graftCLI("rollback")
	if err != nil || !strings.Contains(out, "rolled back") {
		t.Errorf("graft rollback: %v\n%s", err, out)
	}
	h.waitRequests(l, 100)
	checkLoad(t, l.Stop())
	if out, err := graftCLI("status"); err != nil || !strings.Contains(out, "socket mode") {
		t.Errorf("graft status: %v\n%s", err, out)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("graft exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("graft did not exit after SIGTERM")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("admin socket left behind: %v", err)
	}
	if _, err := graftCLI("status"); err == nil {
		t.Error("status answered after graft exited")
	}
}
