package control

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/graftdev/graft/api"
)

// child is the generation's end of a control channel, as a test drives it.
type child struct {
	t *testing.T
	c *net.UnixConn
}

func newPair(t *testing.T) (*Conn, *child) {
	t.Helper()
	c, f, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close() })
	return c, &child{t: t, c: fc.(*net.UnixConn)}
}

func (ch *child) write(b []byte) {
	ch.t.Helper()
	if _, err := ch.c.Write(b); err != nil {
		ch.t.Fatal(err)
	}
}

func (ch *child) send(m api.Control) {
	ch.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		ch.t.Fatal(err)
	}
	ch.write(b)
}

// The child's messages are seen in order; its hello is recorded before it
// is seen; answers are queued; a malformed packet is reported and skipped.
func TestReceive(t *testing.T) {
	c, ch := newPair(t)
	type seenMsg struct {
		typ    string
		hello  bool // Hello() was set when it was seen
		failed bool
	}
	seen := make(chan seenMsg, 16)
	done := make(chan struct{})
	go func() {
		c.Receive(func(m api.Control, err error) {
			seen <- seenMsg{typ: m.Type, hello: c.Hello() != nil, failed: err != nil}
		})
		close(done)
	}()
	ch.write([]byte("{bad"))
	ch.send(api.Control{Type: api.CtlHello, Drains: true, State: []string{"count"}})
	ch.send(api.Control{Type: api.CtlParked})
	ch.send(api.Control{Type: "unknown"})
	ch.send(api.Control{Type: api.CtlError, Error: "no state"})
	want := []seenMsg{{failed: true}, {typ: api.CtlHello, hello: true}, {typ: api.CtlParked, hello: true}, {typ: "unknown", hello: true}, {typ: api.CtlError, hello: true}}
	for i, w := range want {
		if got := <-seen; got != w {
			t.Errorf("message %d seen as %+v, want %+v", i, got, w)
		}
	}
	<-c.Greeted()
	if h := c.Hello(); h == nil || !h.Drains || len(h.State) != 1 {
		t.Errorf("Hello() = %+v", h)
	}
	for _, typ := range []string{api.CtlParked, api.CtlError} {
		if m := <-c.Answers(); m.Type != typ {
			t.Errorf("answer %q, want %q", m.Type, typ)
		}
	}
	ch.c.Close()
	<-done // the channel closed: Receive returns
}

// Send delivers the message and the descriptor attached to it.
func TestSendWithDescriptor(t *testing.T) {
	c, ch := newPair(t)
	r, w, err := StatePair()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := c.Send(api.Control{Type: api.CtlHandoff}, w); err != nil {
		t.Fatal(err)
	}
	w.Close() // the child holds its own copy now
	buf, oob := make([]byte, 4096), make([]byte, 256)
	n, oobn, _, _, err := ch.c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	var m api.Control
	if err := json.Unmarshal(buf[:n], &m); err != nil || m.Type != api.CtlHandoff {
		t.Fatalf("child got %q, %v", buf[:n], err)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages %v, %v", msgs, err)
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights %v, %v", fds, err)
	}
	// The descriptor is the state stream's write end.
	f := os.NewFile(uintptr(fds[0]), "state")
	if _, err := f.Write([]byte("state")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "state" {
		t.Errorf("state stream carried %q, %v", b, err)
	}
}

// Settle returns with the hello known when the child said it before.
func TestSettle(t *testing.T) {
	c, ch := newPair(t)
	seen := make(chan string, 4)
	done := make(chan struct{})
	go func() { c.Receive(func(m api.Control, _ error) { seen <- m.Type }); close(done) }()
	// Once a first message is seen, Receive waits for the next one.
	ch.send(api.Control{Type: "unknown"})
	<-seen
	ch.send(api.Control{Type: api.CtlHello, Drains: true})
	c.Settle()
	if c.Hello() == nil {
		t.Error("hello sent before Settle is not known after it")
	}
	c.Close()
	<-done
}

// A nil Conn is a generation without a control channel.
func TestNilConn(t *testing.T) {
	var c *Conn
	if c.Hello() != nil || c.Greeted() != nil || c.Answers() != nil {
		t.Error("nil Conn has a hello or channels")
	}
	c.Settle() // returns at once
}
