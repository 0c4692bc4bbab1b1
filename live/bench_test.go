package live

import (
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// BenchmarkStateStream streams a state of each size through a unix stream
// socketpair (what the supervisor hands over) and decodes it on the other
// side: the part of a handoff that grows with the state.
func BenchmarkStateStream(b *testing.B) {
	for _, size := range []int{1 << 20, 100 << 20} {
		b.Run(strconv.Itoa(size>>20)+"MB", func(b *testing.B) {
			blob := make([]byte, size)
			for i := range blob {
				blob[i] = byte(i * 7)
			}
			src := &item{Item: Item{Name: "blob", Version: 1,
				Encode: func(w io.Writer) error { _, err := w.Write(blob); return err }}}
			var got []byte
			dst := registered(Item{Name: "blob", Version: 1, Decode: func(r io.Reader) error {
				got = make([]byte, r.(interface{ Len() int }).Len())
				_, err := io.ReadFull(r, got)
				return err
			}, Encode: src.Encode})
			b.SetBytes(int64(size))
			for b.Loop() {
				fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
				if err != nil {
					b.Fatal(err)
				}
				r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
				growBuffer(w, syscall.SO_SNDBUF, syscall.SO_SNDBUFFORCE)
				growBuffer(r, syscall.SO_RCVBUF, syscall.SO_RCVBUFFORCE)
				done := make(chan error, 1)
				go func() {
					_, err := encodeState(w, 1, []*item{src})
					w.Close()
					done <- err
				}()
				_, entries, err := parseState(r)
				r.Close()
				if err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				todo, err := plan(dst, entries)
				if err != nil {
					b.Fatal(err)
				}
				if err := dst["blob"].Decode(todo[0].reader()); err != nil {
					b.Fatal(err)
				}
				if len(got) != size {
					b.Fatalf("decoded %d bytes", len(got))
				}
			}
		})
	}
}
