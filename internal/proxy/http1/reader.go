package http1

import (
	"io"
	"net"
)

// Reader is a read buffer over a connection, grown only for large heads.
type Reader struct {
	c    net.Conn
	b    []byte
	r, w int
	n    int64 // bytes read from c in total
}

const (
	readerSize = 4 << 10
	IOSize     = 32 << 10 // streaming piece and write batch size
)

// NewReader returns a Reader over c with a buffer of the initial size.
func NewReader(c net.Conn) Reader {
	return Reader{c: c, b: make([]byte, readerSize)}
}

// Buffered returns the bytes read and not yet consumed.
func (rb *Reader) Buffered() []byte { return rb.b[rb.r:rb.w] }

// Discard consumes the first n buffered bytes.
func (rb *Reader) Discard(n int) { rb.r += n }

// Total is the number of bytes read from the connection so far.
func (rb *Reader) Total() int64 { return rb.n }

// Shrink replaces a buffer grown past the initial size with one of that
// size, once what is buffered fits in it.
func (rb *Reader) Shrink() {
	if len(rb.b) > readerSize && len(rb.Buffered()) <= readerSize {
		nb := make([]byte, readerSize)
		rb.w = copy(nb, rb.Buffered())
		rb.r = 0
		rb.b = nb
	}
}

// Fill reads more from the connection, making room first.
func (rb *Reader) Fill() error {
	if rb.r == rb.w {
		rb.r, rb.w = 0, 0
	}
	if rb.w == len(rb.b) {
		if rb.r > 0 {
			copy(rb.b, rb.b[rb.r:rb.w])
			rb.w -= rb.r
			rb.r = 0
		} else {
			if len(rb.b) >= MaxHead+IOSize {
				return ErrHeadTooLarge
			}
			nb := make([]byte, min(2*len(rb.b)+readerSize, MaxHead+IOSize))
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

// ReadHead reads until Buffered() starts with a whole head and returns its
// length. Empty lines before a head are skipped (RFC 9112 §2.2).
func (rb *Reader) ReadHead() (int, error) {
	scanned := 0
	for {
		buf := rb.Buffered()
		for scanned == 0 && len(buf) >= 2 && buf[0] == '\r' && buf[1] == '\n' {
			rb.r += 2
			buf = buf[2:]
		}
		if scanned == 0 && len(buf) == 1 && buf[0] == '\r' {
			buf = nil // wait for its LF
		}
		if len(buf) > 0 {
			n, next, err := HeadEnd(buf, scanned)
			if err != ErrNeedMore {
				return n, err
			}
			scanned = next
		}
		if err := rb.Fill(); err != nil {
			return 0, err
		}
	}
}

// Body framings.
const (
	FrameNone = iota
	FrameLength
	FrameChunked
	FrameClose // response delimited by the connection's end
)

// BodyReader yields the decoded data of one message body from a Reader.
type BodyReader struct {
	rb        *Reader
	mode      int
	remaining int64 // FrameLength
	ch        ChunkedDecoder
	spans     [1][2]int
	done      bool
	bytes     int64 // data bytes returned so far
}

// Init starts reading a body of the given framing (length: FrameLength)
// from rb.
func (br *BodyReader) Init(rb *Reader, mode int, length int64) {
	*br = BodyReader{rb: rb, mode: mode, remaining: length}
	if mode == FrameNone || (mode == FrameLength && length == 0) {
		br.done = true
	}
}

// Mode is the body's framing.
func (br *BodyReader) Mode() int { return br.mode }

// Done reports whether the whole body has been read.
func (br *BodyReader) Done() bool { return br.done }

// Bytes is the number of data bytes returned so far.
func (br *BodyReader) Bytes() int64 { return br.bytes }

// NextBuffered returns the next piece of body data (at most max bytes)
// available without reading from the connection: (nil, nil) means more
// must be read (call Fill); io.EOF marks the end. The piece aliases the
// buffer and is valid until the next call.
func (br *BodyReader) NextBuffered(max int) ([]byte, error) {
	if br.done {
		return nil, io.EOF
	}
	buf := br.rb.Buffered()
	switch br.mode {
	case FrameLength:
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
	case FrameChunked:
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
	case FrameClose:
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

// Fill reads more body bytes from the connection.
func (br *BodyReader) Fill() error {
	err := br.rb.Fill()
	if err == io.EOF {
		if br.mode == FrameClose {
			br.done = true
			return nil
		}
		return io.ErrUnexpectedEOF
	}
	return err
}

// next is NextBuffered that reads from the connection when it must.
func (br *BodyReader) next(max int) ([]byte, error) {
	for {
		p, err := br.NextBuffered(max)
		if p != nil || err != nil {
			return p, err
		}
		if err := br.Fill(); err != nil {
			return nil, err
		}
	}
}
