// Command counter is the smallest server built on graft's live package: an
// in-memory counter that keeps its count across `graft upgrade`.
//
//	GET /incr   increments the counter and answers the new value
//	GET /count  answers the value
//
// It listens on the inherited socket named "web", or on 127.0.0.1:8080
// when run alone (-addr changes that default):
//
//	graft run --listen web=127.0.0.1:8080 -- ./counter
//	graft upgrade
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/graftdev/graft/live"
)

// counter is the state handed from generation to generation.
type counter struct {
	mu sync.Mutex
	n  uint64
}

func (c *counter) incr() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

func (c *counter) get() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Version 1 of the state: the count as 8 bytes, big-endian.
func (c *counter) encode(w io.Writer) error {
	return binary.Write(w, binary.BigEndian, c.get())
}

func (c *counter) decode(r io.Reader) error {
	var n uint64
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return fmt.Errorf("decode count: %w", err)
	}
	c.mu.Lock()
	c.n = n
	c.mu.Unlock()
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to bind when no socket named web is inherited")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*addr, log); err != nil {
		log.Error("counter", "err", err)
		os.Exit(1)
	}
}

func run(addr string, log *slog.Logger) error {
	g := live.New(live.Options{Logger: log})
	defer g.Close()
	c := &counter{}
	if err := g.Register(live.Item{Name: "count", Version: 1, Encode: c.encode, Decode: c.decode}); err != nil {
		return err
	}
	ln, err := g.Listen("web", addr)
	if err != nil {
		return err
	}
	// Ready loads the count handed down by the previous generation; if that
	// fails the supervisor keeps the previous generation serving.
	if err := g.Ready(); err != nil {
		return err
	}
	log.Info("serving", "addr", ln.Addr().String(), "generation", g.Generation(), "count", c.get())
	mux := http.NewServeMux()
	mux.Handle("GET /incr", g.Mutating(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, c.incr())
	})))
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, c.get())
	})
	if err := g.Serve(ln, mux); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("drained", "count", c.get())
	return nil
}
