package http1

import "strconv"

// ChunkedDecoder decodes a chunked body incrementally (RFC 9112 §7.1).
// Chunk extensions are skipped; trailers are read and dropped.
type ChunkedDecoder struct {
	remaining int64 // data bytes left in the current chunk
	phase     uint8
	size      int64
	digits    int
	trailer   int // bytes of trailer section seen (bounded)
}

const (
	chSize    = iota // reading hex digits
	chExt            // skipping an extension up to CR
	chSizeLF         // expecting LF after size line CR
	chData           // in chunk data
	chDataCR         // expecting CR after data
	chDataLF         // expecting LF after data
	chTrailer        // at the start of a trailer line
	chTrailerLine
	chTrailerLF // expecting LF ending a trailer line
	chEndLF     // expecting the final LF
	chDone
)

// Decode consumes framing from in, appending data ranges to out as
// [start,end) offsets into in. It returns the bytes consumed; done reports
// the end of the body (the rest of in belongs to the next message).
func (c *ChunkedDecoder) Decode(in []byte, out [][2]int) (consumed int, spans [][2]int, done bool, err error) {
	spans = out
	i := 0
	for i < len(in) {
		switch c.phase {
		case chSize:
			b := in[i]
			v := unhex(b)
			switch {
			case v >= 0:
				if c.digits >= 15 {
					return i, spans, false, ErrBadChunk
				}
				c.size = c.size<<4 | int64(v)
				c.digits++
				i++
			case c.digits > 0 && (b == ';' || b == ' ' || b == '\t'):
				c.phase = chExt
				i++
			case c.digits > 0 && b == '\r':
				c.phase = chSizeLF
				i++
			default:
				return i, spans, false, ErrBadChunk
			}
		case chExt:
			b := in[i]
			if b == '\r' {
				c.phase = chSizeLF
			} else if b == '\n' || b < ' ' && b != '\t' || b == 0x7f {
				return i, spans, false, ErrBadChunk
			}
			i++
		case chSizeLF:
			if in[i] != '\n' {
				return i, spans, false, ErrBadChunk
			}
			i++
			if c.size == 0 {
				c.phase = chTrailer
			} else {
				c.remaining = c.size
				c.phase = chData
			}
			c.size, c.digits = 0, 0
		case chData:
			n := int64(len(in) - i)
			if n > c.remaining {
				n = c.remaining
			}
			spans = append(spans, [2]int{i, i + int(n)})
			i += int(n)
			c.remaining -= n
			if c.remaining == 0 {
				c.phase = chDataCR
			}
			if len(spans) == cap(spans) {
				// The caller's span buffer is full: let it consume these.
				return i, spans, false, nil
			}
		case chDataCR:
			if in[i] != '\r' {
				return i, spans, false, ErrBadChunk
			}
			i++
			c.phase = chDataLF
		case chDataLF:
			if in[i] != '\n' {
				return i, spans, false, ErrBadChunk
			}
			i++
			c.phase = chSize
		case chTrailer:
			if in[i] == '\r' {
				c.phase = chEndLF
			} else {
				c.phase = chTrailerLine
				c.trailer++
			}
			i++
		case chTrailerLine:
			b := in[i]
			c.trailer++
			if c.trailer > MaxHead {
				return i, spans, false, ErrBadChunk
			}
			if b == '\r' {
				c.phase = chTrailerLF
			} else if b == '\n' {
				return i, spans, false, ErrBadChunk
			}
			i++
		case chTrailerLF:
			if in[i] != '\n' {
				return i, spans, false, ErrBadChunk
			}
			i++
			c.phase = chTrailer
		case chEndLF:
			if in[i] != '\n' {
				return i, spans, false, ErrBadChunk
			}
			i++
			c.phase = chDone
			return i, spans, true, nil
		case chDone:
			return i, spans, true, nil
		}
	}
	return i, spans, c.phase == chDone, nil
}

func unhex(b byte) int {
	switch {
	case '0' <= b && b <= '9':
		return int(b - '0')
	case 'a' <= b && b <= 'f':
		return int(b-'a') + 10
	case 'A' <= b && b <= 'F':
		return int(b-'A') + 10
	}
	return -1
}

// Unread gives back the last n data bytes of the span Decode just
// returned (Decode stops right after a span), so they are returned again.
func (c *ChunkedDecoder) Unread(n int) {
	c.remaining += int64(n)
	c.phase = chData
}

// AppendChunk frames p as one chunk (p must be non-empty).
func AppendChunk(dst, p []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(p)), 16)
	dst = append(dst, '\r', '\n')
	dst = append(dst, p...)
	return append(dst, '\r', '\n')
}

// LastChunk ends a chunked body (no trailers).
const LastChunk = "0\r\n\r\n"
