package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/graftdev/graft/api"
)

// parkWait bounds how long a parked reply waits for in-flight requests.
const parkWait = 30 * time.Second

// controlLoop follows the supervisor's messages until the channel closes.
func (g *Gen) controlLoop() {
	for {
		m, files, err := g.ctl.recv()
		if err != nil {
			select {
			case <-g.stop:
				return
			default:
			}
			if errors.Is(err, errControlClosed) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				// The supervisor is gone; keep serving what we have.
				g.log.Warn("control channel closed")
				return
			}
			g.log.Warn("control message", "err", err)
			continue
		}
		g.handle(m, files)
	}
}

// handle applies one control message. Messages are handled in order; a
// handoff finishes before the next message is read.
func (g *Gen) handle(m api.Control, files []*os.File) {
	g.log.Info("control", "type", m.Type)
	var fd *os.File
	if len(files) > 0 {
		fd = files[0]
		for _, f := range files[1:] {
			f.Close() // unexpected extra fds: claimed or closed, never leaked
		}
	}
	switch m.Type {
	case api.CtlHandoff:
		if fd == nil {
			g.sendError(errors.New("handoff: no fd"))
			return
		}
		g.handoff(fd)
	case api.CtlReceive:
		if fd == nil {
			g.sendError(errors.New("receive: no fd"))
			return
		}
		g.receive(fd)
	case api.CtlCommit:
		// The successor serves with our state: what waits here goes there.
		if fd != nil {
			fd.Close()
		}
		g.setAccepting(false)
		g.gate.set(gateMoved)
		g.replyParked()
	case api.CtlPark:
		if fd != nil {
			fd.Close()
		}
		g.setAccepting(false)
		g.replyParked()
	case api.CtlResume:
		if fd != nil {
			fd.Close()
		}
		g.resume()
	case api.CtlDrain:
		if fd != nil {
			fd.Close()
		}
		d := time.Duration(m.DeadlineMS) * time.Millisecond
		if d <= 0 {
			d = g.opts.DrainTimeout
		}
		g.Drain(d)
	default:
		if fd != nil {
			fd.Close()
		}
		g.log.Warn("unknown control message ignored", "type", m.Type)
	}
}

// handoff holds mutations, streams the state to f and reports how much it
// sent. Mutations stay held until the outcome: resume (they run here),
// commit or drain (they go to the successor).
func (g *Gen) handoff(f *os.File) {
	if m := g.gate.get(); m != gateOpen && g.hasItems() {
		// Held: a handoff is already awaiting its outcome; moved: what we
		// hold is a stale copy. Either way a second stream would hand over
		// state that is not (or soon not) the truth.
		f.Close()
		g.sendError(errors.New("handoff: the state was already handed off"))
		return
	}
	// Mutations go on until the successor is up and reading: its process
	// start is not part of the pause.
	err := waitReader(f)
	start := time.Now()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), parkWait)
		err = g.gate.hold(ctx)
		cancel()
	}
	var n int64
	if err == nil {
		growBuffer(f, syscall.SO_SNDBUF, syscall.SO_SNDBUFFORCE)
		n, err = g.save(f)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		g.log.Warn("handoff failed; state stays here", "err", err)
		g.gate.set(gateOpen)
		g.sendError(err)
		return
	}
	g.log.Info("handoff sent", "bytes", n, "pause", time.Since(start))
	if err := g.ctl.send(api.Control{Type: api.CtlHandoffSent, PID: g.env.getpid(), Bytes: n}); err != nil {
		g.log.Warn("report handoff", "err", err)
	}
}

// receive takes the state back (rollback) and serves again.
func (g *Gen) receive(f *os.File) {
	// Nothing mutates here while the state is loaded: the gate is held or
	// moved since our own handoff.
	if g.gate.get() == gateOpen {
		ctx, cancel := context.WithTimeout(context.Background(), parkWait)
		g.gate.hold(ctx)
		cancel()
	}
	growBuffer(f, syscall.SO_RCVBUF, syscall.SO_RCVBUFFORCE)
	signalReader(f)
	n, err := g.load(f)
	f.Close()
	if err != nil {
		// Nothing was decoded (loading is all or nothing), so the state is
		// what this generation had when it handed off. Serving it beats
		// serving nothing: the supervisor already counts on us, and the
		// successor is being drained. What changed there is lost; say so.
		g.log.Error("state coming back on rollback refused; serving the state from before the upgrade", "err", err)
		g.sendError(fmt.Errorf("receive: %w; resumed with the state from before the upgrade", err))
		g.gate.set(gateOpen)
		g.resume()
		return
	}
	g.log.Info("state received", "bytes", n)
	g.gate.set(gateOpen)
	g.resume()
}

func (g *Gen) resume() {
	if g.gate.get() == gateMoved {
		// Resumed without the state coming back: the successor died with
		// whatever it changed; ours is the newest that survives.
		g.log.Warn("resumed without receiving the state back")
	}
	g.gate.set(gateOpen)
	g.setAccepting(true)
}

// replyParked answers "parked" once the requests in flight are done,
// without blocking the control loop (held mutations count as done: they
// wait for an outcome the supervisor has yet to send).
func (g *Gen) replyParked() {
	g.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), parkWait)
		defer cancel()
		select {
		case <-g.work.zero(ctx):
		case <-g.stop:
			return
		}
		g.mu.Lock()
		still := !g.accepting
		g.mu.Unlock()
		if still {
			if err := g.ctl.send(api.Control{Type: api.CtlParked, PID: g.env.getpid()}); err != nil {
				g.log.Warn("report parked", "err", err)
			}
		}
	})
}

// The state stream is a socketpair, so it also carries one byte back: the
// reader sends readerReady once it is running and about to read, and the
// writer holds its mutations only from then on.
const readerReady = 'R'

// readerWait bounds the wait for readerReady; after it the writer streams
// anyway (a reader that never signals still gets its state).
const readerWait = 10 * time.Second

func signalReader(f *os.File) { f.Write([]byte{readerReady}) }

// waitReader waits for the reader's byte. An error means the reader is gone
// (it exited or was killed before reading): there is nobody to hand to.
func waitReader(f *os.File) error {
	if err := f.SetReadDeadline(time.Now().Add(readerWait)); err != nil {
		return nil // not pollable: stream at once
	}
	defer f.SetReadDeadline(time.Time{})
	var b [1]byte
	_, err := f.Read(b[:])
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil
	default:
		return fmt.Errorf("handoff: the successor closed the state stream before reading: %w", err)
	}
}

// stateSockBuf is the socket buffer asked for on the state stream: a
// default unix socket buffer (about 200 KB) makes a 100 MB state hundreds
// of writer/reader round trips.
const stateSockBuf = 4 << 20

// growBuffer enlarges a socket buffer, forcing past the system maximum when
// privileged; failures are harmless (the stream is only slower).
func growBuffer(f *os.File, opt, force int) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, force, stateSockBuf) != nil {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, stateSockBuf)
		}
	})
}

// counter counts work in flight and tells when it reaches zero.
type counter struct {
	mu    sync.Mutex
	n     int
	waits []chan struct{}
}

func (c *counter) add(d int) {
	c.mu.Lock()
	c.n += d
	if c.n == 0 {
		for _, w := range c.waits {
			close(w)
		}
		c.waits = nil
	}
	c.mu.Unlock()
}

// zero returns a channel closed when the count is zero (or ctx ends).
func (c *counter) zero(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{})
	c.mu.Lock()
	if c.n == 0 {
		close(ch)
		c.mu.Unlock()
		return ch
	}
	w := make(chan struct{})
	c.waits = append(c.waits, w)
	c.mu.Unlock()
	go func() {
		select {
		case <-w:
		case <-ctx.Done():
		}
		close(ch)
	}()
	return ch
}
