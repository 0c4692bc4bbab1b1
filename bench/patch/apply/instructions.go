package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/graftdev/graft/bench/internal/callgrind"
	"github.com/graftdev/graft/internal/patch"
)

// countPerCall counts, under callgrind, the instructions of /bench?n=calls
// on the plain build, on the graft build dormant, and on the graft build
// with the patch so applied, and returns them per call. Wall-clock ns per
// call on a shared 2-core machine swing by 2-4x; instructions do not.
// The servers park no goroutines: the cost of a call does not depend on
// them, and the safe point's goroutine scan is slow under valgrind.
func countPerCall(ctx context.Context, work, plain, graft, so string, pub ed25519.PublicKey, buildID string, calls int) ([]float64, error) {
	var per []float64
	for i, bin := range []string{plain, graft} {
		out := filepath.Join(work, fmt.Sprintf("callgrind-%d.out", i))
		name, args, err := callgrind.Command(out, bin)
		if err != nil {
			return nil, err
		}
		sock := filepath.Join(work, fmt.Sprintf("rt-callgrind-%d.sock", i))
		c, addr, err := startCmd(name, args, 0, append(callgrind.Env, "GRAFT_RT_SOCKET="+sock)...)
		if err != nil {
			return nil, err
		}
		p := callgrind.Attach(c.Process.Pid, out)
		count := func() error {
			n, err := p.Count(func() error {
				resp, err := http.Get(fmt.Sprintf("http://%s/bench?n=%d", addr, calls))
				if err != nil {
					return err
				}
				return resp.Body.Close()
			})
			per = append(per, float64(n)/float64(calls))
			return err
		}
		if err := count(); err != nil {
			stop(c)
			return nil, err
		}
		if bin == graft {
			if err := awaitRT(ctx, sock); err != nil {
				stop(c)
				return nil, err
			}
			if _, err := patch.Apply(ctx, sock, so, patch.ApplyOptions{Pub: pub, BuildID: buildID, Wait: time.Minute}); err != nil {
				stop(c)
				return nil, fmt.Errorf("apply under callgrind: %w", err)
			}
			if err := count(); err != nil {
				stop(c)
				return nil, err
			}
		}
		stop(c)
	}
	return per, nil
}
