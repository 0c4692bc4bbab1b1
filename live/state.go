package live

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// Item is one named piece of state handed from a generation to the next.
type Item struct {
	// Name identifies the item across versions of the program.
	Name string
	// Version is the schema version this program encodes and decodes.
	// Versions start at 1; a program that changes the encoding bumps it and
	// registers a migration from the previous one.
	Version int
	// Encode writes the state. It runs while mutations are held (see
	// Update), so it sees a state nobody changes.
	Encode func(w io.Writer) error
	// Decode replaces the state with what r holds, always at Version (older
	// versions are migrated first). It runs before the program is ready, or
	// on rollback while this generation is parked and holds mutations; it
	// must replace, not merge.
	Decode func(r io.Reader) error
}

// Migration rewrites an item's encoding from one version to the adjacent one.
type Migration func(old []byte) ([]byte, error)

// item is a registered Item with its migrations.
type item struct {
	Item
	up   map[int]Migration // from → from+1
	down map[int]Migration // from → from-1
}

// Stream format (all integers unsigned varints unless noted):
//
//	magic "GRAFTST\x01", epoch
//	per entry: 1, len(name), name, version, chunks (len, bytes)..., 0
//	0
//	CRC-32C (Castagnoli) of everything before, 4 bytes big-endian
//
// An item may appear at several versions (its own and older ones produced
// by down migrations) so that an older generation receiving the state back
// on rollback finds a version it can decode.
const streamMagic = "GRAFTST\x01"

// chunkSize bounds one chunk of an entry; encoders stream through it.
const chunkSize = 256 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrState marks a state stream that cannot be decoded: truncated, corrupt,
// replayed, or holding an item or version this program cannot take.
var ErrState = errors.New("state handoff")

// encodeState streams every item to w and returns the bytes written.
func encodeState(w io.Writer, epoch uint64, items []*item) (int64, error) {
	cw := &countWriter{w: w}
	crc := crc32.New(castagnoli)
	// A buffer smaller than a chunk: chunk payloads mostly bypass it.
	bw := bufio.NewWriterSize(io.MultiWriter(cw, crc), 64<<10)
	var vb [binary.MaxVarintLen64]byte
	putU := func(v uint64) { bw.Write(vb[:binary.PutUvarint(vb[:], v)]) }
	bw.WriteString(streamMagic)
	putU(epoch)
	for _, it := range items {
		putU(1)
		putU(uint64(len(it.Name)))
		bw.WriteString(it.Name)
		putU(uint64(it.Version))
		var payload []byte
		if len(it.down) > 0 {
			var buf bytes.Buffer
			if err := it.Encode(&buf); err != nil {
				return cw.n, fmt.Errorf("encode %q: %w", it.Name, err)
			}
			payload = buf.Bytes()
			writeChunks(bw, payload)
		} else {
			ch := &chunker{w: bw}
			if err := it.Encode(ch); err != nil {
				return cw.n, fmt.Errorf("encode %q: %w", it.Name, err)
			}
			ch.flush()
		}
		putU(0)
		// Older encodings for older readers, newest first.
		for v := it.Version; v > 1; v-- {
			m, ok := it.down[v]
			if !ok {
				break
			}
			var err error
			if payload, err = m(payload); err != nil {
				return cw.n, fmt.Errorf("migrate %q down from v%d: %w", it.Name, v, err)
			}
			putU(1)
			putU(uint64(len(it.Name)))
			bw.WriteString(it.Name)
			putU(uint64(v - 1))
			writeChunks(bw, payload)
			putU(0)
		}
	}
	putU(0)
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("write state: %w", err)
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := cw.Write(sum[:]); err != nil {
		return cw.n, fmt.Errorf("write state: %w", err)
	}
	return cw.n, nil
}

func writeChunks(bw *bufio.Writer, p []byte) {
	ch := &chunker{w: bw}
	ch.Write(p)
	ch.flush()
}

// chunker frames an encoder's output as length-prefixed chunks so that an
// entry can be streamed without knowing its size in advance. The final
// zero-length chunk is written by the caller.
type chunker struct {
	w   *bufio.Writer
	buf []byte
}

func (c *chunker) Write(p []byte) (int, error) {
	n := len(p)
	// Whole chunks of a large write go out without a copy into c.buf.
	for len(c.buf) == 0 && len(p) >= chunkSize {
		var vb [binary.MaxVarintLen64]byte
		c.w.Write(vb[:binary.PutUvarint(vb[:], chunkSize)])
		c.w.Write(p[:chunkSize])
		p = p[chunkSize:]
	}
	for len(p) > 0 {
		if c.buf == nil {
			c.buf = make([]byte, 0, chunkSize)
		}
		k := min(len(p), chunkSize-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == chunkSize {
			c.flush()
		}
	}
	return n, nil
}

func (c *chunker) flush() {
	if len(c.buf) == 0 {
		return
	}
	var vb [binary.MaxVarintLen64]byte
	c.w.Write(vb[:binary.PutUvarint(vb[:], uint64(len(c.buf)))])
	c.w.Write(c.buf)
	c.buf = c.buf[:0]
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// entry is one decoded (name, version, payload) of a stream. The payload
// is kept as the chunks it arrived in: joining them would copy the whole
// state again.
type entry struct {
	name    string
	version int
	chunks  [][]byte
	size    int
}

// bytes joins the payload (for migrations, which take a []byte).
func (e *entry) bytes() []byte {
	if len(e.chunks) == 1 {
		return e.chunks[0]
	}
	b := make([]byte, 0, e.size)
	for _, c := range e.chunks {
		b = append(b, c...)
	}
	return b
}

func (e *entry) reader() *payloadReader { return &payloadReader{chunks: e.chunks, left: e.size} }

// payloadReader is what Decode reads. Len reports the bytes left, so a
// decoder can allocate once (io.ReadFull into make([]byte, r.Len())).
type payloadReader struct {
	chunks [][]byte
	left   int
}

func (r *payloadReader) Read(p []byte) (int, error) {
	for len(r.chunks) > 0 && len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	r.left -= n
	return n, nil
}

// Len is the number of bytes not yet read.
func (r *payloadReader) Len() int { return r.left }

// WriteTo lets io.Copy write the chunks without an intermediate buffer.
func (r *payloadReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for len(r.chunks) > 0 {
		n, err := w.Write(r.chunks[0])
		total += int64(n)
		r.left -= n
		r.chunks[0] = r.chunks[0][n:]
		if err != nil {
			return total, err
		}
		r.chunks = r.chunks[1:]
	}
	return total, nil
}

// maxEntry bounds one entry so a corrupt length cannot exhaust memory.
const maxEntry = 1 << 34

// parseState reads and verifies a whole stream. Nothing is applied until
// the stream has been read to its end and its checksum matches, so a
// predecessor killed mid-handoff leaves this generation's state untouched.
func parseState(r io.Reader) (uint64, []entry, error) {
	crc := crc32.New(castagnoli)
	br := &crcReader{r: bufio.NewReaderSize(r, 64<<10), crc: crc}
	magic := make([]byte, len(streamMagic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return 0, nil, fmt.Errorf("%w: read header: %w", ErrState, eof(err))
	}
	if string(magic) != streamMagic {
		return 0, nil, fmt.Errorf("%w: not a graft state stream", ErrState)
	}
	epoch, err := binary.ReadUvarint(br)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: read epoch: %w", ErrState, eof(err))
	}
	var entries []entry
	for {
		tag, err := binary.ReadUvarint(br)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: read entry: %w", ErrState, eof(err))
		}
		if tag == 0 {
			break
		}
		if tag != 1 {
			return 0, nil, fmt.Errorf("%w: bad entry tag %d", ErrState, tag)
		}
		nl, err := binary.ReadUvarint(br)
		if err != nil || nl > 1<<10 {
			return 0, nil, fmt.Errorf("%w: read name: bad length", ErrState)
		}
		name := make([]byte, nl)
		if _, err := io.ReadFull(br, name); err != nil {
			return 0, nil, fmt.Errorf("%w: read name: %w", ErrState, eof(err))
		}
		ver, err := binary.ReadUvarint(br)
		if err != nil || ver == 0 || ver > 1<<31 {
			return 0, nil, fmt.Errorf("%w: read version of %q: bad version", ErrState, name)
		}
		e := entry{name: string(name), version: int(ver)}
		for {
			n, err := binary.ReadUvarint(br)
			if err != nil {
				return 0, nil, fmt.Errorf("%w: read %q: %w", ErrState, name, eof(err))
			}
			if n == 0 {
				break
			}
			if n > chunkSize || uint64(e.size)+n > maxEntry {
				return 0, nil, fmt.Errorf("%w: read %q: chunk too large", ErrState, name)
			}
			c := make([]byte, n)
			if _, err := io.ReadFull(br, c); err != nil {
				return 0, nil, fmt.Errorf("%w: read %q: %w", ErrState, name, eof(err))
			}
			e.chunks = append(e.chunks, c)
			e.size += int(n)
		}
		entries = append(entries, e)
	}
	want := crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(br.r, sum[:]); err != nil {
		return 0, nil, fmt.Errorf("%w: read checksum: %w", ErrState, eof(err))
	}
	if binary.BigEndian.Uint32(sum[:]) != want {
		return 0, nil, fmt.Errorf("%w: checksum mismatch", ErrState)
	}
	return epoch, entries, nil
}

func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

type crcReader struct {
	r   *bufio.Reader
	crc hash.Hash32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	return n, err
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.crc.Write([]byte{b})
	}
	return b, err
}

// plan picks, for every registered item, the entry to decode and the
// migrations to apply, and fails before anything is applied if some entry
// cannot be taken. Items absent from the stream keep their initial state.
func plan(items map[string]*item, entries []entry) ([]entry, error) {
	best := map[string]entry{}
	var order []string
	for _, e := range entries {
		it, ok := items[e.name]
		if !ok {
			return nil, fmt.Errorf("%w: item %q is not registered in this program", ErrState, e.name)
		}
		cur, seen := best[e.name]
		if !seen {
			order = append(order, e.name)
		}
		// Prefer the exact version, then the newest older one this program
		// can migrate up from; a newer one only if nothing else exists.
		if !seen || better(e.version, cur.version, it.Version) {
			best[e.name] = e
		}
	}
	var out []entry
	for _, name := range order {
		e, it := best[name], items[name]
		if e.version > it.Version {
			return nil, fmt.Errorf("%w: item %q is at version %d, this program knows up to %d (register a down migration in the newer program)", ErrState, name, e.version, it.Version)
		}
		if e.version == it.Version {
			out = append(out, e)
			continue
		}
		p := e.bytes()
		for v := e.version; v < it.Version; v++ {
			m, ok := it.up[v]
			if !ok {
				return nil, fmt.Errorf("%w: item %q: no migration from version %d to %d", ErrState, name, v, v+1)
			}
			var err error
			if p, err = m(p); err != nil {
				return nil, fmt.Errorf("%w: migrate %q from version %d to %d: %w", ErrState, name, v, v+1, err)
			}
		}
		out = append(out, entry{name: name, version: it.Version, chunks: [][]byte{p}, size: len(p)})
	}
	return out, nil
}

// better reports whether version a is a better pick than b for a reader
// at version want.
func better(a, b, want int) bool {
	switch {
	case a == want:
		return true
	case b == want:
		return false
	case a < want && b < want:
		return a > b
	case a < want:
		return true
	case b < want:
		return false
	default:
		return a < b
	}
}
