package proxy

import (
	"io"
	"net"
	"time"

	"github.com/graftdev/graft/internal/proxy/http1"
)

// tunnelLinger bounds how long one direction of a tunnel may stay open
// after the other has ended.
const tunnelLinger = 5 * time.Second

// tunnel relays a 101 Switching Protocols answer and then passes raw bytes
// both ways until either side is done (WebSocket and other upgrades).
func (x *exchange) tunnel(b *Backend, u *upconn) {
	cc := x.cc
	w := http1.AppendResponseHead(x.wbuf[:0], &x.rh, http1.FrameNone, false, true, x.hd.Minor)
	// AppendResponseHead dropped the hop-by-hop Connection/Upgrade fields,
	// which a 101 must carry: restate them before the blank line.
	w = w[:len(w)-2]
	w = append(w, "Connection: Upgrade\r\nUpgrade: "...)
	w = append(w, x.rh.Upgrade...)
	w = append(w, "\r\n\r\n"...)
	w = append(w, u.in.Buffered()...) // backend bytes that came with the head
	u.in.Discard(len(u.in.Buffered()))
	x.wbuf = w[:0]

	b.startTunnel(&x.fl, u)
	cc.tmu.Lock()
	cc.tunnel = u
	cc.tmu.Unlock()
	defer func() {
		cc.tmu.Lock()
		cc.tunnel = nil
		cc.tmu.Unlock()
		u.c.Close()
		b.endTunnel(u)
	}()
	if _, err := cc.c.Write(w); err != nil {
		return
	}
	if pending := cc.in.Buffered(); len(pending) > 0 {
		// Client bytes that followed the request head.
		if _, err := u.c.Write(pending); err != nil {
			return
		}
		cc.in.Discard(len(cc.in.Buffered()))
	}
	cc.c.SetReadDeadline(time.Time{})

	// A side that ends cleanly (EOF) is half-closed towards the other, which
	// gets tunnelLinger to finish; a side that fails (reset, or closed by
	// Backend.Close or Shutdown) ends the tunnel at once.
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := io.Copy(u.c, cc.c); err != nil {
			u.c.Close()
			cc.c.Close()
			return
		}
		closeWrite(u.c)
		u.c.SetReadDeadline(time.Now().Add(tunnelLinger))
	}()
	if _, err := io.Copy(cc.c, u.c); err != nil {
		u.c.Close()
		cc.c.Close()
	} else {
		closeWrite(cc.c)
		cc.c.SetReadDeadline(time.Now().Add(tunnelLinger))
	}
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}
