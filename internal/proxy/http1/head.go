// Package http1 parses HTTP/1.x message heads and chunked framing for the
// proxy, in place and without allocating; reads message bodies from a
// connection through one buffer; and writes response heads.
package http1

import (
	"bytes"
	"errors"
)

// The parser is strict on purpose: a proxy that accepts what its backend
// reads differently (bare LF, obs-fold, both Content-Length and
// Transfer-Encoding) opens the door to request smuggling, so such input is
// refused instead of normalized.

var (
	ErrNeedMore      = errors.New("incomplete Head")
	ErrHeadTooLarge  = errors.New("Head too large")
	ErrBadHead       = errors.New("malformed Head")
	ErrBadVersion    = errors.New("unsupported HTTP version")
	ErrBadLength     = errors.New("bad content-length")
	ErrBadEncoding   = errors.New("unsupported transfer-encoding")
	ErrBadChunk      = errors.New("malformed chunked body")
	ErrAmbiguousBody = errors.New("both content-length and transfer-encoding")
)

const MaxHead = 64 << 10 // bytes of request line/status line plus headers

// Field is one field of a parsed Head; name and value alias the buffer.
type Field struct {
	Name, Value []byte
	Hop         bool // hop-by-hop: never forwarded
}

// Head is a parsed request or response Head. Its slices alias the read
// buffer and are valid until the buffer is reused.
type Head struct {
	// request line
	Method, Target []byte
	// status line
	Status int
	Reason []byte

	Minor  int // HTTP/1.Minor
	Fields []Field

	ContentLength int64 // -1 when absent
	Chunked       bool
	Close         bool // Connection: close, or HTTP/1.0 without keep-alive
	Upgrade       []byte
	ConnUpgrade   bool // Connection lists "upgrade"
	Expect100     bool
	Host          []byte
	XFF           []byte // last X-Forwarded-For value
	XFFCount      int
}

func (h *Head) reset() {
	hs := h.Fields[:0]
	*h = Head{Fields: hs, ContentLength: -1}
}

// HeadEnd returns the length of the Head (through the blank line) in b.
// from is where a previous call stopped (next); ErrNeedMore means the
// Head is not all there yet. A bare LF is refused at once rather than
// waited on.
func HeadEnd(b []byte, from int) (n, next int, err error) {
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			if len(b) >= MaxHead {
				return 0, i, ErrHeadTooLarge
			}
			return 0, i, ErrNeedMore
		}
		k := i + j
		if k == 0 || b[k-1] != '\r' {
			return 0, i, ErrBadHead
		}
		if k-1 == i && i > 0 {
			if k+1 > MaxHead {
				return 0, i, ErrHeadTooLarge
			}
			return k + 1, k + 1, nil
		}
		i = k + 1
	}
}

// ParseRequest parses a complete request Head b (as delimited by HeadEnd).
func (h *Head) ParseRequest(b []byte) error {
	h.reset()
	line, rest, ok := cutLine(b)
	if !ok {
		return ErrBadHead
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return ErrBadHead
	}
	h.Method = line[:sp]
	if !isToken(h.Method) {
		return ErrBadHead
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return ErrBadHead
	}
	h.Target = line[:sp]
	for _, c := range h.Target {
		if c <= ' ' || c == 0x7f {
			return ErrBadHead
		}
	}
	minor, ok := parseVersion(line[sp+1:])
	if !ok {
		return ErrBadVersion
	}
	h.Minor = minor
	if err := h.parseFields(rest); err != nil {
		return err
	}
	if h.Chunked && h.Minor == 0 {
		return ErrBadEncoding
	}
	return nil
}

// ParseResponse parses a complete response Head b.
func (h *Head) ParseResponse(b []byte) error {
	h.reset()
	line, rest, ok := cutLine(b)
	if !ok || len(line) < 12 {
		return ErrBadHead
	}
	minor, ok := parseVersion(line[:8])
	if !ok {
		return ErrBadVersion
	}
	h.Minor = minor
	if line[8] != ' ' {
		return ErrBadHead
	}
	s := line[9:12]
	if s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return ErrBadHead
	}
	h.Status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	if len(line) > 12 {
		if line[12] != ' ' {
			return ErrBadHead
		}
		h.Reason = line[13:]
		for _, c := range h.Reason {
			if c < ' ' && c != '\t' || c == 0x7f {
				return ErrBadHead
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

// parseFields parses Field lines up to and including the blank line.
func (h *Head) parseFields(b []byte) error {
	keepAlive := false
	var connTokens bool
	for {
		line, rest, ok := cutLine(b)
		if !ok {
			return ErrBadHead
		}
		b = rest
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return ErrBadHead
		}
		name := line[:colon]
		if !isToken(name) {
			return ErrBadHead // includes whitespace before the colon and obs-fold
		}
		value := trimOWS(line[colon+1:])
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return ErrBadHead
			}
		}
		f := Field{Name: name, Value: value}
		switch len(name) {
		case 2:
			f.Hop = EqualFold(name, "te")
		case 4:
			if EqualFold(name, "host") {
				h.Host = value
			}
		case 6:
			if EqualFold(name, "expect") {
				if EqualFold(value, "100-continue") {
					h.Expect100 = true
				}
				f.Hop = true // answered by the proxy itself
			}
		case 7:
			if EqualFold(name, "upgrade") {
				h.Upgrade = value
				f.Hop = true
			} else if EqualFold(name, "trailer") {
				f.Hop = true
			}
		case 10:
			if EqualFold(name, "connection") {
				f.Hop = true
				eachToken(value, func(tok []byte) {
					switch {
					case EqualFold(tok, "close"):
						h.Close = true
					case EqualFold(tok, "keep-alive"):
						keepAlive = true
					case EqualFold(tok, "upgrade"):
						h.ConnUpgrade = true
					default:
						connTokens = true
					}
				})
			} else if EqualFold(name, "keep-alive") {
				f.Hop = true
			}
		case 14:
			if EqualFold(name, "content-length") {
				n, ok := parseLength(value)
				if !ok || (h.ContentLength >= 0 && h.ContentLength != n) {
					return ErrBadLength
				}
				h.ContentLength = n
				f.Hop = true // rewritten by the proxy to match what it sends
			}
		case 15:
			if EqualFold(name, "x-forwarded-for") {
				h.XFF = value
				h.XFFCount++
				f.Hop = true // re-emitted with the client's address appended
			}
		case 16:
			f.Hop = EqualFold(name, "proxy-connection")
		case 17:
			if EqualFold(name, "transfer-encoding") {
				f.Hop = true
				if h.Chunked || !EqualFold(value, "chunked") {
					return ErrBadEncoding
				}
				h.Chunked = true
			}
		case 18:
			f.Hop = EqualFold(name, "proxy-authenticate")
		case 19:
			f.Hop = EqualFold(name, "proxy-authorization")
		}
		h.Fields = append(h.Fields, f)
	}
	if h.Chunked && h.ContentLength >= 0 {
		return ErrAmbiguousBody
	}
	if h.Minor == 0 && !keepAlive {
		h.Close = true
	}
	if connTokens {
		// Headers named in Connection are hop-by-hop too.
		for i := range h.Fields {
			for j := range h.Fields {
				if EqualFold(h.Fields[j].Name, "connection") {
					eachToken(h.Fields[j].Value, func(tok []byte) {
						if EqualFold(h.Fields[i].Name, string(tok)) {
							h.Fields[i].Hop = true
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

// EqualFold compares b with the lowercase ASCII string s, ignoring case.
func EqualFold[T ~string | ~[]byte](b []byte, s T) bool {
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
