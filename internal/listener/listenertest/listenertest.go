// Package listenertest makes the sockets tests hand to graft as if a
// parent (systemd, or an older graft) had passed them on.
package listenertest

import (
	"net"
	"os"
	"testing"
)

// InheritedTCP returns a listening TCP socket on 127.0.0.1 as a file, the
// way an inherited descriptor arrives, and its address. The listener it
// came from is closed: the file's duplicate keeps the socket.
func InheritedTCP(tb testing.TB) (*os.File, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return f, addr
}
