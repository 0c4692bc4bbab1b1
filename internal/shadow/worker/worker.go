package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/graftdev/graft/internal/shadow/differ"
)

// Arg is the hidden graft command that runs a shadow worker (Serve on
// the socket graft hands it); graft starts it itself.
const Arg = "shadow-worker"

// Env names the variable graft sets for its worker process: the file
// descriptor of the worker's end of the socket. A process started any other
// way does not have it, and Conn refuses to run.
const Env = "GRAFT_SHADOW_WORKER_FD"

// socketFD is the descriptor the worker's socket gets in the child
// (exec.Cmd.ExtraFiles[0]).
const socketFD = 3

// Config is the worker's configuration, graft's first frame.
type Config struct {
	Candidate, Secondary string
	Timeout              time.Duration
	BodyCap              int
	Workers              int
	// InFlight bounds the exchanges graft has sent and not yet had an
	// outcome for; the worker's own queue never needs more room.
	InFlight    int
	Compare     differ.CompareOptions
	ExampleBody int
}

// Conn returns the socket graft handed its worker process, after checking
// that graft started this process: getenv(Env) names the descriptor, and
// the descriptor is a unix socket.
func Conn(getenv func(string) string) (net.Conn, error) {
	if getenv(Env) != fmt.Sprint(socketFD) {
		return nil, fmt.Errorf("graft %s: only graft starts this command (for graft shadow)", Arg)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(socketFD, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return nil, fmt.Errorf("graft %s: descriptor %d is not graft's socket", Arg, socketFD)
	}
	f := os.NewFile(socketFD, "shadow-worker-socket")
	defer f.Close() // FileConn dups it
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("graft %s: %w", Arg, err)
	}
	return c, nil
}

// mirror does the compare half of mirroring: per exchange, it asks both
// lanes and compares the three answers. In graft's worker process it runs
// at the lanes' priority, so this work only gets the CPU the service
// leaves.
type mirror struct {
	cand, sec   *laneClient
	cmp         *differ.Comparer
	exampleBody int
	random      func() float64
}

func newMirror(cfg Config) *mirror {
	return &mirror{
		cand:        newLaneClient(cfg.Candidate, cfg.BodyCap, cfg.Timeout, cfg.Workers),
		sec:         newLaneClient(cfg.Secondary, cfg.BodyCap, cfg.Timeout, cfg.Workers),
		cmp:         differ.NewComparer(cfg.Compare),
		exampleBody: cfg.ExampleBody,
		random:      rand.Float64,
	}
}

type job struct {
	slot    uint32
	req     *Request
	primary *differ.Answer
}

// compare asks both lanes at once and compares their answers with the
// primary's.
func (m *mirror) compare(ctx context.Context, j job) *Outcome {
	// Which lane is asked from this goroutine (and so, mostly, first) is a
	// coin flip per request: a field that depends on when a lane is asked
	// (a clock at coarse resolution, a sequence) then differs as often for
	// the candidate as for the secondary, and is noise, as it should be.
	// Asked in a fixed order, the later lane would differ from the primary
	// more often, a false divergence (TestControllerLaneOrderIsRandom, in
	// package shadow).
	var cand, sec *differ.Answer
	var wg sync.WaitGroup
	if m.random() < 0.5 {
		wg.Go(func() { cand = m.cand.do(ctx, j.req) })
		sec = m.sec.do(ctx, j.req)
	} else {
		wg.Go(func() { sec = m.sec.do(ctx, j.req) })
		cand = m.cand.do(ctx, j.req)
	}
	wg.Wait()
	o := &Outcome{Slot: j.slot}
	switch {
	case ctx.Err() != nil:
		o.Flags = Aborted // the run is ending; this one is not evidence
	case sec.Err != nil:
		// Without the secondary there is no noise measure for this request.
		o.Flags = SecondaryFailed
	default:
		o.Outcome = m.cmp.Outcome(j.primary, sec, cand, m.exampleBody)
	}
	return o
}

func (m *mirror) close() {
	m.cand.close()
	m.sec.close()
}

// Serve is the shadow worker: it reads its configuration and then
// mirrored exchanges from conn, asks the lanes and compares the answers on
// a fixed pool of goroutines, and writes each exchange's outcome back. It
// returns when conn is closed (graft ends the run by closing it: exchanges
// still queued are dropped, lane requests under way are cut short) or ctx
// ends.
func Serve(ctx context.Context, conn io.ReadWriteCloser) error {
	defer conn.Close()
	fr := newFrameReader(conn)
	typ, p, err := fr.next()
	if err != nil {
		return fmt.Errorf("shadow worker: read config: %w", err)
	}
	var cfg Config
	if typ != frameConfig {
		return fmt.Errorf("shadow worker: read config: %w: type %q", ErrFrame, typ)
	}
	if err := json.Unmarshal(p, &cfg); err != nil {
		return fmt.Errorf("shadow worker: read config: %w", err)
	}
	cfg.Workers, cfg.InFlight = max(cfg.Workers, 1), max(cfg.InFlight, 1)
	m := newMirror(cfg)
	defer m.close()
	return serve(ctx, conn, fr, m, cfg)
}

func serve(ctx context.Context, conn io.ReadWriteCloser, fr *frameReader, m *mirror, cfg Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Graft bounds what it has in flight, so neither channel ever fills:
	// the reader never waits on the workers and sees the end of the stream
	// (graft ending the run) at once.
	jobs := make(chan job, cfg.InFlight)
	out := make(chan *Outcome, cfg.InFlight)
	var workers, writer sync.WaitGroup
	for range cfg.Workers {
		workers.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-jobs:
					// select picks at random among ready cases: a queued job
					// must not reach the lanes after the run has ended.
					if ctx.Err() != nil {
						return
					}
					out <- m.compare(ctx, j)
				}
			}
		})
	}
	writer.Go(func() { writeOutcomes(conn, out, cancel) })
	// The end of the stream cancels ctx, and with it the lane requests
	// under way; closing conn from another goroutine when ctx ends
	// unblocks the read below.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var err error
	for {
		var typ byte
		var p []byte
		typ, p, err = fr.next()
		if err != nil {
			break
		}
		if typ != frameExchange {
			err = fmt.Errorf("%w: type %q", ErrFrame, typ)
			break
		}
		slot, req, primary, derr := decodeExchange(p)
		if derr != nil {
			err = derr
			break
		}
		select {
		case jobs <- job{slot, req, primary}:
		default:
			err = fmt.Errorf("shadow worker: more than %d exchanges in flight", cfg.InFlight)
		}
		if err != nil {
			break
		}
	}
	cancel()
	workers.Wait()
	close(out)
	writer.Wait()
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || ctx.Err() != nil && isConnGone(err) {
		return nil
	}
	return fmt.Errorf("shadow worker: %w", err)
}

func isConnGone(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrClosed)
}

// writeOutcomes writes the outcomes from out, as many as are ready in one
// write, until out is closed; a failed write (graft gone) cancels the
// worker, and the rest is drained unwritten.
func writeOutcomes(conn io.Writer, out <-chan *Outcome, cancel func()) {
	var buf []byte
	broken := false
	for o := range out {
		if broken {
			continue
		}
		buf = AppendWaiting(AppendOutcome(buf[:0], o), out, AppendOutcome)
		if _, err := conn.Write(buf); err != nil {
			broken = true
			cancel()
		}
		if cap(buf) > 4*BatchBytes {
			buf = nil // one large batch does not pin its buffer
		}
		// Each write wakes graft's reader: outcomes that come in the next
		// moment go in the same write.
		time.Sleep(BatchEvery)
	}
}

// BatchBytes is about how much one write carries when frames are waiting.
const BatchBytes = 256 << 10

// AppendWaiting appends, with add, what is already waiting on ch (until it
// is empty or closed), up to about BatchBytes in all: one write on either
// side of the socket carries everything that has piled up.
func AppendWaiting[T any](buf []byte, ch <-chan T, add func([]byte, T) []byte) []byte {
	for len(buf) < BatchBytes {
		select {
		case v, ok := <-ch:
			if !ok {
				return buf
			}
			buf = add(buf, v)
		default:
			return buf
		}
	}
	return buf
}

// BatchEvery is the pause after each write on either side of the socket:
// what comes meanwhile goes out in the next write, so that neither side
// wakes the other more than 1/BatchEvery times a second, whatever the
// rate of mirrored exchanges. Mirroring is asynchronous; the lanes are
// asked that much later, and the outcomes recorded that much later.
const BatchEvery = 5 * time.Millisecond
