package proxy

import (
	"errors"
	"io"
	"net"
	"strconv"

	"github.com/graftdev/graft/internal/proxy/http1"
)

// rbuf is a read buffer over a connection, grown only for large heads.
type rbuf struct {
	c    net.Conn
	b    []byte
	r, w int
	n    int64 // bytes read from c in total
}

const (
	rbufSize = 4 << 10
	ioSize   = 32 << 10 // streaming piece and write batch size
)

func (rb *rbuf) buffered() []byte { return rb.b[rb.r:rb.w] }

// fill reads more from the connection, making room first.
func (rb *rbuf) fill() error {
	if rb.r == rb.w {
		rb.r, rb.w = 0, 0
	}
	if rb.w == len(rb.b) {
		if rb.r > 0 {
			copy(rb.b, rb.b[rb.r:rb.w])
			rb.w -= rb.r
			rb.r = 0
		} else {
			if len(rb.b) >= http1.MaxHead+ioSize {
				return http1.ErrHeadTooLarge
			}
			nb := make([]byte, min(2*len(rb.b)+rbufSize, http1.MaxHead+ioSize))
			copy(nb, rb.b[:rb.w])
			rb.b = nb
		}
	}
	for {
		n, err := rb.c.Read(rb.b[rb.w:])
		rb.w += n
		rb.n += int64(n)
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readHead reads until buffered() starts with a whole head and returns its
// length. Empty lines before a head are skipped (RFC 9112 §2.2).
func (rb *rbuf) readHead() (int, error) {
	scanned := 0
	for {
		buf := rb.buffered()
		for scanned == 0 && len(buf) >= 2 && buf[0] == '\r' && buf[1] == '\n' {
			rb.r += 2
			buf = buf[2:]
		}
		if scanned == 0 && len(buf) == 1 && buf[0] == '\r' {
			buf = nil // wait for its LF
		}
		if len(buf) > 0 {
			n, next, err := http1.HeadEnd(buf, scanned)
			if err != http1.ErrNeedMore {
				return n, err
			}
			scanned = next
		}
		if err := rb.fill(); err != nil {
			return 0, err
		}
	}
}

// Body framings.
const (
	frameNone = iota
	frameLength
	frameChunked
	frameClose // response delimited by the connection's end
)

// bodyReader yields the decoded data of one message body from an rbuf.
type bodyReader struct {
	rb        *rbuf
	mode      int
	remaining int64 // frameLength
	ch        http1.ChunkedDecoder
	spans     [1][2]int
	done      bool
	bytes     int64 // data bytes returned so far
}

func (br *bodyReader) init(rb *rbuf, mode int, length int64) {
	*br = bodyReader{rb: rb, mode: mode, remaining: length}
	if mode == frameNone || (mode == frameLength && length == 0) {
		br.done = true
	}
}

// nextBuffered returns the next piece of body data (at most max bytes)
// available without reading from the connection: (nil, nil) means more
// must be read (call fill); io.EOF marks the end. The piece aliases the
// buffer and is valid until the next call.
func (br *bodyReader) nextBuffered(max int) ([]byte, error) {
	if br.done {
		return nil, io.EOF
	}
	buf := br.rb.buffered()
	switch br.mode {
	case frameLength:
		if len(buf) == 0 {
			return nil, nil
		}
		n := min(int64(len(buf)), br.remaining, int64(max))
		br.remaining -= n
		br.rb.r += int(n)
		if br.remaining == 0 {
			br.done = true
		}
		br.bytes += n
		return buf[:n], nil
	case frameChunked:
		for len(buf) > 0 {
			consumed, spans, done, err := br.ch.Decode(buf, br.spans[:0])
			br.rb.r += consumed
			if err != nil {
				return nil, err
			}
			if done {
				br.done = true
			}
			if len(spans) > 0 {
				s, e := spans[0][0], spans[0][1]
				if e-s > max {
					// Give back what does not fit: decode stopped right
					// after this span, so it is the tail of what it consumed.
					extra := e - s - max
					br.rb.r -= extra
					br.ch.Unread(extra)
					e -= extra
				}
				br.bytes += int64(e - s)
				return buf[s:e], nil
			}
			if done {
				return nil, io.EOF
			}
			buf = buf[consumed:]
		}
		return nil, nil
	case frameClose:
		if len(buf) == 0 {
			return nil, nil
		}
		n := min(len(buf), max)
		br.rb.r += n
		br.bytes += int64(n)
		return buf[:n], nil
	}
	return nil, io.EOF
}

// fill reads more body bytes from the connection.
func (br *bodyReader) fill() error {
	err := br.rb.fill()
	if err == io.EOF {
		if br.mode == frameClose {
			br.done = true
			return nil
		}
		return io.ErrUnexpectedEOF
	}
	return err
}

// next is nextBuffered that reads from the connection when it must.
func (br *bodyReader) next(max int) ([]byte, error) {
	for {
		p, err := br.nextBuffered(max)
		if p != nil || err != nil {
			return p, err
		}
		if err := br.fill(); err != nil {
			return nil, err
		}
	}
}

// appendChunk frames p as one chunk (p must be non-empty).
func appendChunk(dst, p []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(p)), 16)
	dst = append(dst, '\r', '\n')
	dst = append(dst, p...)
	return append(dst, '\r', '\n')
}

var lastChunk = []byte("0\r\n\r\n")

// errClientGone marks a failure to write to the client.
var errClientGone = errors.New("client connection failed")
