// Command handoff measures live's state handoff: for each state size it
// runs upgrades of a generation holding that much state under a writer
// that mutates it continuously, and prints the handoff pause and the total
// upgrade time.
//
//	go run ./bench/handoff -sizes 1MB,100MB -upgrades 5
//
// Figures per upgrade:
//   - stream: the old generation told to hand off → it has written and
//     closed the stream (handoff-sent), with the new generation reading
//     concurrently;
//   - pause: the longest a mutating request waited (seen by the writer),
//     i.e. how long mutations were held: handoff → the new generation is
//     ready and the old one forwards what it held;
//   - total: upgrade started (new process spawned) → new generation ready.
//
// It uses livetest's supervisor, which runs graft's upgrade sequence step
// by step, so the phases can be timed.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdev/graft/live"
	"github.com/graftdev/graft/live/livetest"
)

func main() {
	livetest.MaybeShim()
	if len(os.Args) > 2 && os.Args[1] == "generation" {
		if err := generation(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "generation:", err)
			os.Exit(1)
		}
		return
	}
	sizes := flag.String("sizes", "1MB,100MB", "state sizes to measure")
	upgrades := flag.Int("upgrades", 5, "upgrades per size")
	flag.Parse()
	fmt.Printf("# go run ./bench/handoff -sizes %s -upgrades %d   (%s)\n", *sizes, *upgrades, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Printf("%-8s %8s  %-26s %-26s %-26s %s\n", "state", "upgrades", "stream p50 / max", "pause p50 / max", "total p50 / max", "state intact")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := parseSize(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := measure(s, n, *upgrades); err != nil {
			fmt.Fprintln(os.Stderr, "measure", s+":", err)
			os.Exit(1)
		}
	}
}

func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "MB"):
		mult, s = 1<<20, strings.TrimSuffix(s, "MB")
	case strings.HasSuffix(s, "KB"):
		mult, s = 1<<10, strings.TrimSuffix(s, "KB")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func measure(label string, size, upgrades int) error {
	dir, err := os.MkdirTemp("", "handoff-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ln, addr, err := livetest.Listen("web")
	if err != nil {
		return err
	}
	defer ln.File.Close()
	sup := livetest.New(dir, ln)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := func() *exec.Cmd {
		c := exec.Command(self, "generation", strconv.Itoa(size))
		c.Stderr = os.Stderr
		return c
	}
	ctx := context.Background()
	cur, err := sup.StartFirst(ctx, cmd())
	if err != nil {
		return err
	}
	var all []*livetest.Generation
	defer func() {
		for _, g := range append(all, cur) {
			g.Kill()
		}
	}()
	base := "http://" + addr
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 200 * time.Millisecond}}
	before, err := get(client, base+"/sum")
	if err != nil {
		return err
	}

	// One writer mutates continuously; its slowest request per upgrade is
	// the pause it saw.
	var (
		maxWait atomic.Int64
		writes  atomic.Int64
		wfail   atomic.Int64
		wg      sync.WaitGroup
	)
	wctx, stop := context.WithCancel(ctx)
	wg.Go(func() {
		for wctx.Err() == nil {
			t := time.Now()
			resp, err := client.Post(base+"/m", "text/plain", nil)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = errors.New(resp.Status)
				}
			}
			if err != nil {
				wfail.Add(1)
				continue
			}
			writes.Add(1)
			if d := int64(time.Since(t)); d > maxWait.Load() {
				maxWait.Store(d)
			}
		}
	})
	var stream, pause, total []time.Duration
	var drains sync.WaitGroup
	for range upgrades {
		maxWait.Store(0)
		ng, tm, err := sup.Upgrade(ctx, cur, cmd())
		if err != nil {
			stop()
			wg.Wait()
			return err
		}
		// Let held writes finish through the new generation.
		w0 := writes.Load()
		for writes.Load() < w0+3 && wfail.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		stream, pause, total = append(stream, tm.Pause), append(pause, time.Duration(maxWait.Load())), append(total, tm.Total)
		prev := cur
		all, cur = append(all, prev), ng
		drains.Go(func() { prev.Drain(ctx, 10*time.Second) })
	}
	stop()
	wg.Wait()
	drains.Wait()
	after, err := get(client, base+"/sum")
	if err != nil {
		return err
	}
	// The blob must be unchanged; the counter must equal the writes.
	var crcB, crcA uint32
	var nB, nA int64
	fmt.Sscanf(before, "%d %d", &crcB, &nB)
	fmt.Sscanf(after, "%d %d", &crcA, &nA)
	intact := crcA == crcB && nA == nB+writes.Load() && wfail.Load() == 0
	fmt.Printf("%-8s %8d  %-26s %-26s %-26s %v (writes %d, failed %d, counter %d)\n", label, upgrades,
		p50max(stream), p50max(pause), p50max(total), intact, writes.Load(), wfail.Load(), nA)
	if !intact {
		return fmt.Errorf("state not intact: before %q after %q, %d writes", before, after, writes.Load())
	}
	return nil
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

func p50max(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	return r(s[len(s)/2]) + " / " + r(s[len(s)-1])
}

// generation is one generation of the measured server: a blob of the
// given size and a counter, both handed over.
func generation(sizeArg string) error {
	size, _ := strconv.Atoi(sizeArg)
	var log *slog.Logger
	if os.Getenv("HANDOFF_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	g := live.New(live.Options{Logger: log})
	defer g.Close()
	var (
		mu    sync.Mutex
		blob  []byte
		count uint64
	)
	err := g.Register(live.Item{
		Name: "blob", Version: 1,
		Encode: func(w io.Writer) error { _, err := w.Write(blob); return err },
		Decode: func(r io.Reader) error {
			// live's reader says how much is left: allocate once.
			b := make([]byte, r.(interface{ Len() int }).Len())
			_, err := io.ReadFull(r, b)
			blob = b
			return err
		},
	})
	if err == nil {
		err = g.Register(live.Item{
			Name: "count", Version: 1,
			Encode: func(w io.Writer) error { return binary.Write(w, binary.BigEndian, count) },
			Decode: func(r io.Reader) error { return binary.Read(r, binary.BigEndian, &count) },
		})
	}
	if err != nil {
		return err
	}
	ln, err := g.Listen("web", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if err := g.Ready(); err != nil {
		return err
	}
	if blob == nil { // first generation: make the state
		blob = make([]byte, size)
		rand.Read(blob)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /m", g.Mutating(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		count++
		mu.Unlock()
	})))
	mux.HandleFunc("GET /sum", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%d %d\n", crc32.ChecksumIEEE(blob), count)
	})
	return g.Serve(ln, mux)
}
