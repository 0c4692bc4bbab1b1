package worker

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/graftdev/graft/internal/shadow/differ"
)

// The worker protocol: graft and its shadow worker exchange frames over a
// unix stream socket. A frame is a 4-byte big-endian length, then that
// many bytes: a type byte and its payload. Numbers inside are uvarints,
// strings and byte slices a uvarint length and the bytes. graft sends one
// config frame, then exchange frames; the worker answers each exchange
// with one outcome frame, in any order. A small encoding of its own: per
// exchange, encoding/gob or JSON would cost graft more than the copy.
const (
	frameConfig   = 'C' // JSON of Config, once, first
	frameExchange = 'X' // slot, request, primary answer
	frameOutcome  = 'O' // slot, flags, noise, diffs, [three answers]
)

// maxFrame bounds a frame: two bodies at the cap (≤ 64 KiB by default) and
// their heads fit many times over; a larger length is a broken stream.
const maxFrame = 64 << 20

// Outcome flags (Outcome.Flags).
const (
	SecondaryFailed = 1 << iota // the secondary gave no answer: no noise measure, not compared
	Aborted                     // the worker was ending: not evidence
	outAnswers                  // the three answers follow (the candidate alone differs)
)

// ErrFrame is a frame that does not decode.
var ErrFrame = errors.New("malformed worker frame")

// Request is a mirrored request as the lanes are asked it.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// beginFrame appends a frame's length placeholder and type; endFrame fills
// the length in.
func beginFrame(b []byte, typ byte) ([]byte, int) {
	at := len(b)
	return append(b, 0, 0, 0, 0, typ), at
}

func endFrame(b []byte, at int) []byte {
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// appendConfig appends the config frame, graft's first.
func appendConfig(b []byte, cfg Config) ([]byte, error) {
	j, err := json.Marshal(cfg)
	if err != nil {
		return b, err
	}
	b, at := beginFrame(b, frameConfig)
	return endFrame(append(b, j...), at), nil
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendHeader(b []byte, h http.Header) []byte {
	b = binary.AppendUvarint(b, uint64(len(h)))
	for k, vs := range h {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendAnswer encodes an answer; a nil one as status 0 and no error.
func appendAnswer(b []byte, a *differ.Answer) []byte {
	if a == nil {
		a = &differ.Answer{}
	}
	b = binary.AppendUvarint(b, uint64(a.Status))
	errText := ""
	if a.Err != nil {
		errText = a.Err.Error()
	}
	b = appendString(b, errText)
	b = appendHeader(b, a.Header)
	b = appendBytes(b, a.Body)
	return appendBool(b, a.Truncated)
}

// AppendExchange appends the frame of one mirrored exchange for the
// worker: the request and the primary's answer, under graft's slot number.
func AppendExchange(b []byte, slot uint32, r *Request, primary *differ.Answer) []byte {
	b, at := beginFrame(b, frameExchange)
	b = binary.AppendUvarint(b, uint64(slot))
	b = appendString(b, r.Method)
	b = appendString(b, r.Path)
	b = appendString(b, r.RawQuery)
	b = appendHeader(b, r.Header)
	b = appendBytes(b, r.Body)
	b = appendAnswer(b, primary)
	return endFrame(b, at)
}

// Outcome is the worker's answer for one exchange: its slot, its flags
// (SecondaryFailed, Aborted) and, when neither is set, the comparison's.
type Outcome struct {
	Slot  uint32
	Flags byte
	differ.Outcome
}

// AppendOutcome appends the frame of one exchange's outcome for graft.
func AppendOutcome(b []byte, o *Outcome) []byte {
	b, at := beginFrame(b, frameOutcome)
	b = binary.AppendUvarint(b, uint64(o.Slot))
	flags := o.Flags
	if o.Candidate != nil {
		flags |= outAnswers
	}
	b = append(b, flags)
	for _, list := range [][]string{o.Noise, o.Diffs} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, s := range list {
			b = appendString(b, s)
		}
	}
	if flags&outAnswers != 0 {
		b = appendAnswer(b, o.Primary)
		b = appendAnswer(b, o.Secondary)
		b = appendAnswer(b, o.Candidate)
	}
	return endFrame(b, at)
}

// frameReader reads frames; the payload it returns is valid until the
// next call.
type frameReader struct {
	br  *bufio.Reader
	buf []byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, 64<<10)}
}

func (fr *frameReader) next() (typ byte, payload []byte, err error) {
	var n [4]byte
	if _, err := io.ReadFull(fr.br, n[:]); err != nil {
		return 0, nil, err // io.EOF: the peer closed between frames
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > maxFrame {
		return 0, nil, fmt.Errorf("%w: length %d", ErrFrame, size)
	}
	if cap(fr.buf) < int(size) {
		fr.buf = make([]byte, size)
	}
	fr.buf = fr.buf[:size]
	if _, err := io.ReadFull(fr.br, fr.buf); err != nil {
		return 0, nil, fmt.Errorf("read worker frame: %w", io.ErrUnexpectedEOF)
	}
	return fr.buf[0], fr.buf[1:], nil
}

// decoder reads a payload; the first error sticks and later reads return
// zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = ErrFrame
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = ErrFrame
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// bytes returns a copy: the payload's buffer is reused.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = ErrFrame
		return nil
	}
	if n == 0 {
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b)
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = ErrFrame
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

// count reads a number of items that take at least one byte each, so that
// a corrupt count cannot make the decoder allocate without bound.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = ErrFrame
		return 0
	}
	return int(n)
}

func (d *decoder) header() http.Header {
	n := d.count()
	if n == 0 {
		return nil
	}
	h := make(http.Header, n)
	for range n {
		k := d.string()
		vs := make([]string, d.count())
		for i := range vs {
			vs[i] = d.string()
		}
		if d.err != nil {
			return nil
		}
		h[k] = vs
	}
	return h
}

func (d *decoder) answer() *differ.Answer {
	a := &differ.Answer{Status: int(d.uvarint())}
	if e := d.string(); e != "" {
		a.Err = errors.New(e)
	}
	a.Header = d.header()
	a.Body = d.bytes()
	a.Truncated = d.byte() != 0
	return a
}

// decodeExchange decodes an exchange frame's payload.
func decodeExchange(p []byte) (slot uint32, r *Request, primary *differ.Answer, err error) {
	d := &decoder{b: p}
	slot = uint32(d.uvarint())
	r = &Request{Method: d.string(), Path: d.string(), RawQuery: d.string(), Header: d.header(), Body: d.bytes()}
	primary = d.answer()
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrFrame
	}
	return slot, r, primary, d.err
}

// decodeOutcome decodes an outcome frame's payload.
func decodeOutcome(p []byte) (*Outcome, error) {
	d := &decoder{b: p}
	o := &Outcome{Slot: uint32(d.uvarint()), Flags: d.byte()}
	for _, list := range []*[]string{&o.Noise, &o.Diffs} {
		if n := d.count(); n > 0 {
			*list = make([]string, n)
			for i := range *list {
				(*list)[i] = d.string()
			}
		}
	}
	if o.Flags&outAnswers != 0 {
		o.Primary, o.Secondary, o.Candidate = d.answer(), d.answer(), d.answer()
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrFrame
	}
	return o, d.err
}

// OutcomeReader reads the worker's outcome frames: graft's end of the
// socket.
type OutcomeReader struct {
	fr *frameReader
}

// NewOutcomeReader returns a reader of the outcome frames on r.
func NewOutcomeReader(r io.Reader) *OutcomeReader {
	return &OutcomeReader{fr: newFrameReader(r)}
}

// Next reads the next outcome. It returns io.EOF when the worker closed
// the socket between frames, and an error wrapping ErrFrame for a frame
// that is not an outcome or does not decode.
func (or *OutcomeReader) Next() (*Outcome, error) {
	typ, p, err := or.fr.next()
	if err != nil {
		return nil, err
	}
	if typ != frameOutcome {
		return nil, fmt.Errorf("%w: type %q", ErrFrame, typ)
	}
	return decodeOutcome(p)
}
