package live

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
)

// served starts g serving h on a fresh listener and returns its address and
// Serve's result.
func served(t *testing.T, g *Gen, hs *http.Server) (string, func() error) {
	t.Helper()
	ln, err := g.Listen("web", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Ready(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() { ch <- g.ServeServer(hs, ln) }()
	done := sync.OnceValue(func() error { return <-ch })
	t.Cleanup(func() {
		g.Drain(0)
		done()
		g.Close()
	})
	return ln.Addr().String(), done
}

func rawRequest(t *testing.T, c net.Conn, br *bufio.Reader, method, path, body string) *http.Response {
	t.Helper()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", method, path, len(body), body)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

func TestDrainAnswersNextKeepAliveRequestWithClose(t *testing.T) {
	g := newGen(Options{NoSignals: true}, fakeEnv(map[string]string{}))
	addr, done := served(t, g, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	})})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if resp := rawRequest(t, c, br, "GET", "/", ""); resp.Close {
		t.Fatal("first response closes the connection before any drain")
	}
	g.Drain(time.Minute)
	// The connection is idle now: a drain that closed it would lose this POST.
	resp := rawRequest(t, c, br, "POST", "/", "payload")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "POST payload" || !resp.Close {
		t.Fatalf("POST on a draining keep-alive connection: %d %q close=%v; want 200, the body, Connection: close", resp.StatusCode, body, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the closing response: %v, want EOF", err)
	}
	if err := done(); err != nil {
		t.Fatalf("Serve after drain: %v", err)
	}
}

func TestDrainAnswersAcceptedConnectionAndInFlightRequest(t *testing.T) {
	g := newGen(Options{NoSignals: true}, fakeEnv(map[string]string{}))
	newConn := make(chan struct{}, 1)
	entered, release := make(chan struct{}), make(chan struct{})
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				close(entered)
				<-release
			}
			io.WriteString(w, r.URL.Path)
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				newConn <- struct{}{}
			}
		},
	}
	addr, done := served(t, g, hs)

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	<-newConn
	fmt.Fprintf(slow, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered

	quiet, err := net.Dial("tcp", addr) // accepted, request not yet sent
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	<-newConn

	g.Drain(time.Minute)
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil || resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("in-flight request across drain: %v %v", resp, err)
	}
	qbr := bufio.NewReader(quiet)
	resp = rawRequest(t, quiet, qbr, "POST", "/late", "x")
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "/late" || !resp.Close {
		t.Fatalf("request sent on an accepted connection after drain began: %d %q close=%v", resp.StatusCode, b, resp.Close)
	}
	if err := done(); err != nil {
		t.Fatal(err)
	}
}

func TestDrainClosesHijackedConnectionAtDeadline(t *testing.T) {
	g := newGen(Options{NoSignals: true}, fakeEnv(map[string]string{}))
	hijacked := make(chan struct{})
	addr, done := served(t, g, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, bw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
		bw.Flush()
		close(hijacked)
		_ = c // kept open: only the drain deadline ends it
	})})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
	<-hijacked
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	g.Drain(50 * time.Millisecond)
	if err := done(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("hijacked connection after the drain deadline: %v, want EOF", err)
	}
}

// supervisorEnd gives a Gen a control channel whose other end the test holds.
type supervisorEnd struct {
	t    *testing.T
	conn *net.UnixConn
}

func withControl(t *testing.T, env map[string]string) *supervisorEnd {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "sup")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	env["GRAFT_CONTROL_FD"] = strconv.Itoa(fds[1])
	return &supervisorEnd{t: t, conn: c.(*net.UnixConn)}
}

func (s *supervisorEnd) send(m api.Control, f *os.File) {
	s.t.Helper()
	b, _ := json.Marshal(m)
	var oob []byte
	if f != nil {
		oob = syscall.UnixRights(int(f.Fd()))
	}
	if _, _, err := s.conn.WriteMsgUnix(b, oob, nil); err != nil {
		s.t.Fatal(err)
	}
}

func (s *supervisorEnd) expect(typ string) api.Control {
	s.t.Helper()
	buf := make([]byte, 4096)
	for {
		s.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := s.conn.Read(buf)
		if err != nil {
			s.t.Fatalf("waiting for %s: %v", typ, err)
		}
		var m api.Control
		json.Unmarshal(buf[:n], &m)
		if m.Type == typ {
			return m
		}
		if m.Type == api.CtlError && typ != api.CtlError {
			s.t.Fatalf("waiting for %s: error %s", typ, m.Error)
		}
	}
}

func TestParkStopsAcceptingUntilResume(t *testing.T) {
	env := map[string]string{}
	sup := withControl(t, env)
	g := newGen(Options{NoSignals: true}, fakeEnv(env))
	var resumed atomic.Bool
	addr, _ := served(t, g, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, resumed.Load())
	})})
	sup.expect(api.CtlHello)
	sup.send(api.Control{Type: api.CtlPark}, nil)
	sup.expect(api.CtlParked)

	// Connecting works (the kernel queues it) but nobody accepts while parked.
	got := make(chan string, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + addr)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	resumed.Store(true)
	sup.send(api.Control{Type: api.CtlResume}, nil)
	if s := <-got; s != "true" {
		t.Fatalf("request to a parked generation answered %q; want it answered only after resume", s)
	}
}

// A mutation that arrives during a handoff waits; after commit it is
// forwarded through the shared listener to the successor, never applied here.
func TestHeldMutationIsForwardedAfterCommit(t *testing.T) {
	env := map[string]string{}
	sup := withControl(t, env)
	old := newGen(Options{NoSignals: true}, fakeEnv(env))
	m := &memItem{v: "state"}
	if err := old.Register(m.item("a", 1)); err != nil {
		t.Fatal(err)
	}
	var appliedHere atomic.Int32
	mux := http.NewServeMux()
	mux.Handle("POST /m", old.Mutating(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		appliedHere.Add(1)
		io.WriteString(w, "old")
	})))
	held := make(chan struct{}, 1)
	old.gate.onWait = func() { held <- struct{}{} }
	addr, _ := served(t, old, &http.Server{Handler: mux})
	sup.expect(api.CtlHello)

	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	defer r.Close()
	stream := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(r); stream <- b }()
	sup.send(api.Control{Type: api.CtlHandoff}, w)
	w.Close()
	sent := sup.expect(api.CtlHandoffSent)
	if b := <-stream; int64(len(b)) != sent.Bytes || sent.Bytes == 0 {
		t.Fatalf("handoff-sent says %d bytes, stream had %d", sent.Bytes, len(b))
	}

	reply := make(chan string, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/m", "text/plain", strings.NewReader("x"))
		if err != nil {
			reply <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		reply <- string(b)
	}()
	// Wait until the request is held in the gate, then bring up the
	// successor on the same socket and commit.
	<-held
	succ := newGen(Options{NoSignals: true}, fakeEnv(map[string]string{}))
	shared := dupListener(t, old)
	if err := succ.Ready(); err != nil {
		t.Fatal(err)
	}
	sdone := make(chan error, 1)
	go func() {
		sdone <- succ.Serve(succ.gateListener(shared), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "successor")
		}))
	}()
	defer func() { succ.Drain(0); <-sdone; succ.Close() }()
	sup.send(api.Control{Type: api.CtlCommit}, nil)
	if got := <-reply; got != "successor" || appliedHere.Load() != 0 {
		t.Fatalf("held mutation answered %q, applied here %d times; want it forwarded to the successor", got, appliedHere.Load())
	}
}

func dupListener(t *testing.T, g *Gen) net.Listener {
	t.Helper()
	g.mu.Lock()
	l := g.lns[0].Listener.(*net.TCPListener)
	g.mu.Unlock()
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// A generation whose state is already on its way (or gone) refuses a
// second handoff instead of streaming a copy that is not the truth.
func TestSecondHandoffRefused(t *testing.T) {
	env := map[string]string{}
	sup := withControl(t, env)
	g := newGen(Options{NoSignals: true}, fakeEnv(env))
	if err := g.Register((&memItem{v: "x"}).item("a", 1)); err != nil {
		t.Fatal(err)
	}
	served(t, g, &http.Server{Handler: http.NotFoundHandler()})
	sup.expect(api.CtlHello)
	for i, want := range []string{api.CtlHandoffSent, api.CtlError} {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
		go func() { r.Write([]byte{readerReady}); io.Copy(io.Discard, r); r.Close() }()
		sup.send(api.Control{Type: api.CtlHandoff}, w)
		w.Close()
		if m := sup.expect(want); m.Type != want {
			t.Fatalf("handoff %d: %s, want %s", i+1, m.Type, want)
		}
	}
}
