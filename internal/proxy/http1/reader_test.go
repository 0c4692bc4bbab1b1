package http1

import (
	"bytes"
	"io"
	"net/http/httputil"
	"testing"
)

// decodeAll runs the chunked decoder over in, fed in pieces of at most
// step bytes, with pieces of output of at most max bytes, as the proxy
// does.
func decodeAll(in []byte, step, max int) (out []byte, consumed int, done bool, err error) {
	rb := &Reader{b: make([]byte, len(in))}
	var br BodyReader
	br.Init(rb, FrameChunked, -1)
	fed := 0
	for {
		p, err := br.NextBuffered(max)
		if err == io.EOF {
			return out, rb.r, true, nil
		}
		if err != nil {
			return out, rb.r, false, err
		}
		if p != nil {
			out = append(out, p...)
			continue
		}
		if fed == len(in) {
			return out, rb.r, false, nil
		}
		k := min(step, len(in)-fed)
		copy(rb.b[rb.w:], in[fed:fed+k])
		rb.w += k
		fed += k
	}
}

// FuzzChunked: the decoder's result does not depend on how the input is
// split or how small the output pieces are, and agrees with net/http's
// chunked reader on what both accept.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"3\r\nabc\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
		"A\r\n0123456789\r\n0\r\n\r\nNEXT",
		"zz\r\n",
		"3\r\nabcX\r\n",
		"ffffffffffffffff\r\n",
	} {
		f.Add([]byte(s), uint8(1), uint8(2))
	}
	f.Fuzz(func(t *testing.T, in []byte, step, max uint8) {
		whole, wc, wdone, werr := decodeAll(in, len(in)+1, 1<<20)
		split, sc, sdone, serr := decodeAll(in, int(step)+1, int(max)+1)
		if (werr == nil) != (serr == nil) || wdone != sdone || !bytes.Equal(whole, split) {
			t.Fatalf("split changes result: %q/%v/%v vs %q/%v/%v", whole, wdone, werr, split, sdone, serr)
		}
		if wdone && wc != sc {
			t.Fatalf("consumed %d vs %d", wc, sc)
		}
		if !wdone || werr != nil {
			return
		}
		std, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in[:wc])))
		if err == nil && !bytes.Equal(std, whole) {
			t.Fatalf("net/http decodes %q, we decode %q", std, whole)
		}
	})
}
