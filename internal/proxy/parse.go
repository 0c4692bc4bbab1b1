package proxy

import (
	"bytes"
	"errors"
)

// The parser is strict on purpose: a proxy that accepts what its backend
// reads differently (bare LF, obs-fold, both Content-Length and
// Transfer-Encoding) opens the door to request smuggling, so such input is
// refused instead of normalized.

var (
	errNeedMore      = errors.New("incomplete head")
	errHeadTooLarge  = errors.New("head too large")
	errBadHead       = errors.New("malformed head")
	errBadVersion    = errors.New("unsupported HTTP version")
	errBadLength     = errors.New("bad content-length")
	errBadEncoding   = errors.New("unsupported transfer-encoding")
	errBadChunk      = errors.New("malformed chunked body")
	errAmbiguousBody = errors.New("both content-length and transfer-encoding")
)

const maxHead = 64 << 10 // bytes of request line/status line plus headers

// header is one field of a parsed head; name and value alias the buffer.
type header struct {
	name, value []byte
	hop         bool // hop-by-hop: never forwarded
}

// head is a parsed request or response head. Its slices alias the read
// buffer and are valid until the buffer is reused.
type head struct {
	// request line
	method, target []byte
	// status line
	status int
	reason []byte

	minor   int // HTTP/1.minor
	headers []header

	contentLength int64 // -1 when absent
	chunked       bool
	closeConn     bool // Connection: close, or HTTP/1.0 without keep-alive
	upgrade       []byte
	connUpgrade   bool // Connection lists "upgrade"
	expect100     bool
	host          []byte
	xff           []byte // last X-Forwarded-For value (joined when repeated)
	xffCount      int
}

func (h *head) reset() {
	hs := h.headers[:0]
	*h = head{headers: hs, contentLength: -1}
}

// headEnd returns the length of the head (through the blank line) in b.
// from is where a previous call stopped (next); errNeedMore means the
// head is not all there yet. A bare LF is refused at once rather than
// waited on.
func headEnd(b []byte, from int) (n, next int, err error) {
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			if len(b) >= maxHead {
				return 0, i, errHeadTooLarge
			}
			return 0, i, errNeedMore
		}
		k := i + j
		if k == 0 || b[k-1] != '\r' {
			return 0, i, errBadHead
		}
		if k-1 == i && i > 0 {
			if k+1 > maxHead {
				return 0, i, errHeadTooLarge
			}
			return k + 1, k + 1, nil
		}
		i = k + 1
	}
}

// parseRequest parses a complete request head b (as delimited by headEnd).
func (h *head) parseRequest(b []byte) error {
	h.reset()
	line, rest, ok := cutLine(b)
	if !ok {
		return errBadHead
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return errBadHead
	}
	h.method = line[:sp]
	if !isToken(h.method) {
		return errBadHead
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return errBadHead
	}
	h.target = line[:sp]
	for _, c := range h.target {
		if c <= ' ' || c == 0x7f {
			return errBadHead
		}
	}
	minor, ok := parseVersion(line[sp+1:])
	if !ok {
		return errBadVersion
	}
	h.minor = minor
	if err := h.parseFields(rest); err != nil {
		return err
	}
	if h.chunked && h.minor == 0 {
		return errBadEncoding
	}
	return nil
}

// parseResponse parses a complete response head b.
func (h *head) parseResponse(b []byte) error {
	h.reset()
	line, rest, ok := cutLine(b)
	if !ok || len(line) < 12 {
		return errBadHead
	}
	minor, ok := parseVersion(line[:8])
	if !ok {
		return errBadVersion
	}
	h.minor = minor
	if line[8] != ' ' {
		return errBadHead
	}
	s := line[9:12]
	if s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return errBadHead
	}
	h.status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	if len(line) > 12 {
		if line[12] != ' ' {
			return errBadHead
		}
		h.reason = line[13:]
		for _, c := range h.reason {
			if c < ' ' && c != '\t' || c == 0x7f {
				return errBadHead
			}
		}
	}
	return h.parseFields(rest)
}

func parseVersion(v []byte) (int, bool) {
	if len(v) != 8 || string(v[:7]) != "HTTP/1." {
		return 0, false
	}
	switch v[7] {
	case '0':
		return 0, true
	case '1':
		return 1, true
	}
	return 0, false
}

// cutLine splits off the first CRLF-terminated line; a bare CR or LF
// inside the line is an error.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// parseFields parses header lines up to and including the blank line.
func (h *head) parseFields(b []byte) error {
	keepAlive := false
	var connTokens bool
	for {
		line, rest, ok := cutLine(b)
		if !ok {
			return errBadHead
		}
		b = rest
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errBadHead
		}
		name := line[:colon]
		if !isToken(name) {
			return errBadHead // includes whitespace before the colon and obs-fold
		}
		value := trimOWS(line[colon+1:])
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return errBadHead
			}
		}
		f := header{name: name, value: value}
		switch len(name) {
		case 2:
			f.hop = equalFold(name, "te")
		case 4:
			if equalFold(name, "host") {
				h.host = value
			}
		case 6:
			if equalFold(name, "expect") {
				if equalFold(value, "100-continue") {
					h.expect100 = true
				}
				f.hop = true // answered by the proxy itself
			}
		case 7:
			if equalFold(name, "upgrade") {
				h.upgrade = value
				f.hop = true
			} else if equalFold(name, "trailer") {
				f.hop = true
			}
		case 10:
			if equalFold(name, "connection") {
				f.hop = true
				eachToken(value, func(tok []byte) {
					switch {
					case equalFold(tok, "close"):
						h.closeConn = true
					case equalFold(tok, "keep-alive"):
						keepAlive = true
					case equalFold(tok, "upgrade"):
						h.connUpgrade = true
					default:
						connTokens = true
					}
				})
			} else if equalFold(name, "keep-alive") {
				f.hop = true
			}
		case 14:
			if equalFold(name, "content-length") {
				n, ok := parseLength(value)
				if !ok || (h.contentLength >= 0 && h.contentLength != n) {
					return errBadLength
				}
				h.contentLength = n
				f.hop = true // rewritten by the proxy to match what it sends
			}
		case 15:
			if equalFold(name, "x-forwarded-for") {
				h.xff = value
				h.xffCount++
				f.hop = true // re-emitted with the client's address appended
			}
		case 16:
			f.hop = equalFold(name, "proxy-connection")
		case 17:
			if equalFold(name, "transfer-encoding") {
				f.hop = true
				if h.chunked || !equalFold(value, "chunked") {
					return errBadEncoding
				}
				h.chunked = true
			}
		case 18:
			f.hop = equalFold(name, "proxy-authenticate")
		case 19:
			f.hop = equalFold(name, "proxy-authorization")
		}
		h.headers = append(h.headers, f)
	}
	if h.chunked && h.contentLength >= 0 {
		return errAmbiguousBody
	}
	if h.minor == 0 && !keepAlive {
		h.closeConn = true
	}
	if connTokens {
		// Headers named in Connection are hop-by-hop too.
		for i := range h.headers {
			for j := range h.headers {
				if equalFold(h.headers[j].name, "connection") {
					eachToken(h.headers[j].value, func(tok []byte) {
						if equalFold(h.headers[i].name, string(tok)) {
							h.headers[i].hop = true
						}
					})
				}
			}
		}
	}
	return nil
}

// parseLength parses a Content-Length value: digits only, no overflow.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// eachToken calls f for each comma-separated, trimmed, non-empty element.
func eachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var tok []byte
		if i < 0 {
			tok, v = v, nil
		} else {
			tok, v = v[:i], v[i+1:]
		}
		if tok = trimOWS(tok); len(tok) > 0 {
			f(tok)
		}
	}
}

// equalFold compares b with the lowercase ASCII string s, ignoring case.
func equalFold[T ~string | ~[]byte](b []byte, s T) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenTable[c] {
			return false
		}
	}
	return true
}

// chunkedState decodes a chunked body incrementally (RFC 9112 §7.1).
// Chunk extensions are skipped; trailers are read and dropped.
type chunkedState struct {
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

// decode consumes framing from in, appending data ranges to out as
// [start,end) offsets into in. It returns the bytes consumed; done reports
// the end of the body (the rest of in belongs to the next message).
func (c *chunkedState) decode(in []byte, out [][2]int) (consumed int, spans [][2]int, done bool, err error) {
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
					return i, spans, false, errBadChunk
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
				return i, spans, false, errBadChunk
			}
		case chExt:
			b := in[i]
			if b == '\r' {
				c.phase = chSizeLF
			} else if b == '\n' || b < ' ' && b != '\t' || b == 0x7f {
				return i, spans, false, errBadChunk
			}
			i++
		case chSizeLF:
			if in[i] != '\n' {
				return i, spans, false, errBadChunk
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
				return i, spans, false, errBadChunk
			}
			i++
			c.phase = chDataLF
		case chDataLF:
			if in[i] != '\n' {
				return i, spans, false, errBadChunk
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
			if c.trailer > maxHead {
				return i, spans, false, errBadChunk
			}
			if b == '\r' {
				c.phase = chTrailerLF
			} else if b == '\n' {
				return i, spans, false, errBadChunk
			}
			i++
		case chTrailerLF:
			if in[i] != '\n' {
				return i, spans, false, errBadChunk
			}
			i++
			c.phase = chTrailer
		case chEndLF:
			if in[i] != '\n' {
				return i, spans, false, errBadChunk
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
