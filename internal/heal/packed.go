package heal

import (
	"bytes"
	"encoding/binary"
	"errors"

	"github.com/graftdev/graft/internal/heal/rule"
	"github.com/graftdev/graft/internal/proxy"
)

// packed is a benign request kept as evidence, encoded into one buffer
// without pointers. The proxy's copy of a request is a dozen objects
// (strings, a header map and its values, the body) that the garbage
// collector would scan on every cycle for as long as the sample holds
// them; a packed request is one object it marks without scanning. Only a
// derivation unpacks requests, and only those of its route.
type packed struct{ b []byte }

// pack encodes q: id, body length, method, path, query, header fields, body.
func pack(q *proxy.Request) *packed {
	var stack [1024]byte // most requests pack without a second allocation
	b := binary.AppendUvarint(stack[:0], q.ID)
	b = binary.AppendVarint(b, q.BodyLen)
	b = appendBytes(b, q.Method)
	b = appendBytes(b, q.Path)
	b = appendBytes(b, q.RawQuery)
	b = binary.AppendUvarint(b, uint64(len(q.Header)))
	for k, vs := range q.Header {
		b = appendBytes(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendBytes(b, v)
		}
	}
	b = appendBytes(b, q.Body)
	return &packed{b: bytes.Clone(b)}
}

func appendBytes[S string | []byte](b []byte, s S) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

var errPacked = errors.New("corrupt packed request")

// head returns the packed request's method and path without unpacking
// the rest, so a derivation skips other routes cheaply.
func (p *packed) head() (method, path string, err error) {
	d := unpacker{b: p.b}
	d.uvarint()
	d.varint()
	method, path = d.string(), d.string()
	return method, path, d.err
}

// unpack decodes the request as the rule language sees it.
func (p *packed) unpack() (*rule.Input, error) {
	d := unpacker{b: p.b}
	in := &rule.Input{ID: d.uvarint(), BodyLen: d.varint()}
	in.Method, in.Path, in.RawQuery = d.string(), d.string(), d.string()
	n := d.uvarint()
	in.Header = make(map[string][]string, min(n, 64))
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.string()
		vs := make([]string, min(d.uvarint(), 64))
		for j := range vs {
			vs[j] = d.string()
		}
		in.Header[k] = vs
	}
	if body := d.bytes(); len(body) > 0 {
		in.Body = bytes.Clone(body)
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = errPacked
	}
	return in, d.err
}

type unpacker struct {
	b   []byte
	err error
}

func (d *unpacker) uvarint() uint64 { return next(d, binary.Uvarint) }

func (d *unpacker) varint() int64 { return next(d, binary.Varint) }

func next[T uint64 | int64](d *unpacker, decode func([]byte) (T, int)) T {
	v, n := decode(d.b)
	if n <= 0 {
		d.err, d.b = errPacked, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *unpacker) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = errPacked, nil
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *unpacker) string() string { return string(d.bytes()) }
