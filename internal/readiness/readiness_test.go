package readiness

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "notify", "tcp", "http:/healthz", "delay:1s", "delay:-1s", "http:x", "bogus", "http:/a b"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, proxy bool) {
		r, err := Parse(s, proxy)
		if err != nil {
			return
		}
		if s != "" && r.String() != s && r.Kind != Delay {
			t.Errorf("Parse(%q).String() = %q", s, r.String())
		}
		if !proxy && (r.Kind == TCP || r.Kind == HTTP) {
			t.Errorf("socket mode accepted %q", s)
		}
	})
}

// The tcp probe passes when something accepts; the http probe when the
// path answers below 500.
func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	up := srv.Listener.Addr().String()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		ready string
		addr  string
		ok    bool
	}{
		{"tcp", up, true},
		{"tcp", down, false},
		{"http:/healthz", up, true},
		{"http:/broken", up, false},
		{"http:/healthz", down, false},
		{"notify", down, true}, // awaited elsewhere
	} {
		t.Run(fmt.Sprintf("%s@%s", tc.ready, tc.addr), func(t *testing.T) {
			r, err := Parse(tc.ready, true)
			if err != nil {
				t.Fatal(err)
			}
			err = r.Probe(t.Context(), srv.Client(), tc.addr)
			if (err == nil) != tc.ok {
				t.Errorf("Probe: %v, want passing %v", err, tc.ok)
			}
		})
	}
}

// READY=1 sent with SdNotify, among other lines of a message, reaches a
// NotifySocket; Close removes its file.
func TestNotifySocket(t *testing.T) {
	n, err := ListenNotify(filepath.Join(t.TempDir(), "notify.sock"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { n.Receive(); close(done) }()
	if err := SdNotify(n.Path(), "STATUS=starting\nREADY=1\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Ready():
	case <-t.Context().Done():
		t.Fatal("READY=1 not seen")
	}
	n.Close()
	<-done
	if err := SdNotify(n.Path(), "READY=1"); err == nil {
		t.Error("notify socket file still answers after Close")
	}
}

// A notify path starting with @ is in the abstract namespace.
func TestSdNotifyAbstract(t *testing.T) {
	name := fmt.Sprintf("graft-readiness-test-%d", os.Getpid())
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := SdNotify("@"+name, "READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	k, err := c.Read(buf)
	if err != nil || string(buf[:k]) != "READY=1" {
		t.Errorf("abstract socket got %q, %v", buf[:k], err)
	}
}
