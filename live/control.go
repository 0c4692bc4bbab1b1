package live

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/graftdev/graft/api"
)

// maxControl bounds one control datagram; messages are small JSON objects.
const maxControl = 64 << 10

// control is the SOCK_SEQPACKET channel to the supervisor: one JSON object
// per datagram, fds alongside with SCM_RIGHTS.
type control struct {
	conn *net.UnixConn
	wmu  sync.Mutex
}

// openControl claims the inherited control fd.
func openControl(fd int) (*control, error) {
	closeOnExec(fd)
	f := os.NewFile(uintptr(fd), "graft-control")
	if f == nil {
		return nil, fmt.Errorf("open control fd %d: not open", fd)
	}
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("open control fd %d: %w", fd, err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("open control fd %d: not a unix socket", fd)
	}
	return &control{conn: uc}, nil
}

// send writes one message, with optional fds.
func (c *control) send(m api.Control, files ...*os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("send %s: %w", m.Type, err)
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = syscall.UnixRights(fds...)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, _, err := c.conn.WriteMsgUnix(b, oob, nil); err != nil {
		return fmt.Errorf("send %s: %w", m.Type, err)
	}
	return nil
}

// recv reads one message and the fds that came with it. Fds arrive
// close-on-exec (the runtime receives with MSG_CMSG_CLOEXEC).
func (c *control) recv() (api.Control, []*os.File, error) {
	buf := make([]byte, maxControl)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	n, oobn, _, _, err := c.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return api.Control{}, nil, err
	}
	files, ferr := parseRights(oob[:oobn])
	if n == 0 && ferr == nil && len(files) == 0 {
		return api.Control{}, nil, errControlClosed
	}
	m, err := parseControl(buf[:n])
	if err == nil {
		err = ferr
	}
	if err != nil {
		for _, f := range files {
			f.Close()
		}
		return api.Control{}, nil, err
	}
	return m, files, nil
}

var errControlClosed = fmt.Errorf("control channel closed")

// parseControl decodes one datagram from the supervisor.
func parseControl(b []byte) (api.Control, error) {
	var m api.Control
	if err := json.Unmarshal(b, &m); err != nil {
		return api.Control{}, fmt.Errorf("parse control message: %w", err)
	}
	if m.Type == "" {
		return api.Control{}, fmt.Errorf("parse control message: no type")
	}
	return m, nil
}

// parseRights extracts the fds of SCM_RIGHTS messages.
func parseRights(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control fds: %w", err)
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			// Non-blocking before wrapping, so the file uses the poller and
			// takes deadlines.
			syscall.SetNonblock(fd, true)
			files = append(files, os.NewFile(uintptr(fd), "graft-fd"))
		}
	}
	return files, nil
}

func (c *control) close() error { return c.conn.Close() }
