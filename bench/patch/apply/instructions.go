package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
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
	per, err := countCalls(work, "plain", plain, calls, nil)
	if err != nil {
		return nil, err
	}
	apply := func(sock string) error {
		if err := awaitRT(ctx, sock); err != nil {
			return err
		}
		if _, err := patch.Apply(ctx, sock, so, patch.ApplyOptions{Pub: pub, BuildID: buildID, Wait: time.Minute}); err != nil {
			return fmt.Errorf("apply under callgrind: %w", err)
		}
		return nil
	}
	graftPer, err := countCalls(work, "graft", graft, calls, apply)
	return append(per, graftPer...), err
}

// countCalls starts bin under callgrind and counts the instructions per
// call of /bench?n=calls; with then set, it calls then with the server's
// rt socket and counts again.
func countCalls(work, name, bin string, calls int, then func(sock string) error) ([]float64, error) {
	out := filepath.Join(work, "callgrind-"+name+".out")
	tool, args, err := callgrind.Command(out, bin)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(work, "rt-callgrind-"+name+".sock")
	c, addr, err := startCmd(tool, args, 0, append(slices.Clone(callgrind.Env), "GRAFT_RT_SOCKET="+sock)...)
	if err != nil {
		return nil, err
	}
	defer stop(c)
	p := callgrind.Attach(c.Process.Pid, out)
	count := func() (float64, error) {
		n, err := p.Count(func() error {
			resp, err := http.Get(fmt.Sprintf("http://%s/bench?n=%d", addr, calls))
			if err != nil {
				return err
			}
			return resp.Body.Close()
		})
		return float64(n) / float64(calls), err
	}
	first, err := count()
	if err != nil || then == nil {
		return []float64{first}, err
	}
	if err := then(sock); err != nil {
		return nil, err
	}
	second, err := count()
	return []float64{first, second}, err
}
