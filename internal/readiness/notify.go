package readiness

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
)

// NotifySocket is a private NOTIFY_SOCKET for one child: a unixgram socket
// on which it says READY=1 (systemd's sd_notify protocol).
type NotifySocket struct {
	path  string
	c     *net.UnixConn
	ready chan struct{}
	once  sync.Once
}

// ListenNotify creates a notify socket at path, replacing a leftover file.
func ListenNotify(path string) (*NotifySocket, error) {
	os.Remove(path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &NotifySocket{path: path, c: c, ready: make(chan struct{})}, nil
}

// Path is the socket's path, the child's NOTIFY_SOCKET.
func (n *NotifySocket) Path() string { return n.path }

// Ready is closed when the child has said READY=1.
func (n *NotifySocket) Ready() <-chan struct{} { return n.ready }

// Receive reads the child's messages until Close. Its caller owns it and
// waits for it.
func (n *NotifySocket) Receive() {
	buf := make([]byte, 4096)
	for {
		k, err := n.c.Read(buf)
		if err != nil {
			return
		}
		for line := range strings.SplitSeq(string(buf[:k]), "\n") {
			if line == "READY=1" {
				n.once.Do(func() { close(n.ready) })
			}
		}
	}
}

// Close closes the socket, which ends Receive, and removes its file.
func (n *NotifySocket) Close() {
	n.c.Close()
	os.Remove(n.path)
}

// SdNotify sends state (such as "READY=1") to a systemd notify socket;
// a path starting with @ is in the abstract namespace.
func SdNotify(path, state string) error {
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify %s: %w", path, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify %s: %w", path, err)
	}
	return nil
}
