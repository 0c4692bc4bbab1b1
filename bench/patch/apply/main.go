// Command apply measures graft patch on a real server: time to make a
// patch, to apply it with GOROUTINES goroutines alive, and the cost of a
// call of the patched function against the dormant and the plain build.
//
//	go run ./bench/patch/apply [-goroutines 10000] [-rounds 5] [-instructions]
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/graftdev/graft/internal/instrument"
	"github.com/graftdev/graft/internal/patch"
)

func main() {
	goroutines := flag.Int("goroutines", 10000, "parked goroutines in the server")
	rounds := flag.Int("rounds", 5, "make+apply+revert rounds")
	calls := flag.Int("calls", 2000000, "calls per overhead sample")
	to := flag.String("to", "same", "fixture version to patch to: same (an equivalent body: pure call overhead) or v2 (the real fix)")
	instructions := flag.Bool("instructions", false, "also count the instructions per call under valgrind's callgrind (plain, dormant, patched)")
	flag.Parse()
	if err := run(*goroutines, *rounds, *calls, *to, *instructions); err != nil {
		fmt.Fprintln(os.Stderr, "apply:", err)
		os.Exit(1)
	}
}

func run(goroutines, rounds, calls int, to string, instructions bool) error {
	ctx := context.Background()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "graft-bench-patch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	dir := filepath.Join(work, "srv")
	if err := cp(filepath.Join(root, "bench/patch/fixture/v1"), dir); err != nil {
		return err
	}
	v2 := filepath.Join(root, "bench/patch/fixture", to)
	b, err := instrument.Prepare(ctx, instrument.Options{Dir: dir, Patterns: []string{"./..."}, Patchable: true})
	if err != nil {
		return err
	}
	bin := filepath.Join(work, "srv.graft")
	cmd, err := b.Command(ctx, "build", nil, "-o", bin, ".")
	if err != nil {
		return err
	}
	cmd.Env = append(cmd.Env, "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("graft build: %v: %s", err, out)
	}
	plain := filepath.Join(work, "srv.plain")
	pc := exec.Command("go", "build", "-o", plain, ".")
	pc.Dir = dir
	pc.Env = append(os.Environ(), "GOWORK=off")
	if out, err := pc.CombinedOutput(); err != nil {
		return fmt.Errorf("plain build: %v: %s", err, out)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)

	sock := filepath.Join(work, "rt.sock")
	srv, addr, err := start(bin, goroutines, "GRAFT_RT_SOCKET="+sock)
	if err != nil {
		return err
	}
	defer stop(srv)
	psrv, paddr, err := start(plain, goroutines)
	if err != nil {
		return err
	}
	defer stop(psrv)
	if err := awaitRT(ctx, sock); err != nil {
		return err
	}

	var plainNs, dormantNs, patchedNs []float64
	var makeT, applyT, safeT, revertT []time.Duration
	sample := func(a string) (float64, error) {
		resp, err := http.Get(fmt.Sprintf("http://%s/bench?n=%d", a, calls))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strconv.ParseFloat(string(body), 64)
	}
	for r := range rounds {
		for _, s := range []struct {
			addr string
			to   *[]float64
		}{{paddr, &plainNs}, {addr, &dormantNs}} {
			v, err := sample(s.addr)
			if err != nil {
				return err
			}
			*s.to = append(*s.to, v)
		}
		so := filepath.Join(work, fmt.Sprintf("p%d.so", r))
		t0 := time.Now()
		if _, err := patch.Make(ctx, patch.MakeOptions{From: dir, To: v2, Target: &b.Manifest,
			Builder: &patch.InstrumentBuilder{Target: &b.Manifest}, Key: priv, Out: so}); err != nil {
			return fmt.Errorf("make: %w", err)
		}
		makeT = append(makeT, time.Since(t0))
		t0 = time.Now()
		info, err := patch.Apply(ctx, sock, so, patch.ApplyOptions{Pub: pub, BuildID: b.Manifest.Build.ID, Wait: 2 * time.Second})
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		applyT = append(applyT, time.Since(t0))
		safeT = append(safeT, time.Duration(info.SafePointMS*float64(time.Millisecond)))
		v, err := sample(addr)
		if err != nil {
			return err
		}
		patchedNs = append(patchedNs, v)
		t0 = time.Now()
		if _, err := patch.Revert(ctx, sock, info.ID); err != nil {
			return fmt.Errorf("revert: %w", err)
		}
		revertT = append(revertT, time.Since(t0))
	}
	var perCall []float64
	if instructions {
		so := filepath.Join(work, fmt.Sprintf("p%d.so", rounds-1))
		if perCall, err = countPerCall(ctx, work, plain, bin, so, pub, b.Manifest.Build.ID, calls); err != nil {
			return fmt.Errorf("instructions: %w", err)
		}
	}
	flags := ""
	if instructions {
		flags = " -instructions"
	}
	fmt.Printf("Command: go run ./bench/patch/apply -goroutines %d -rounds %d -calls %d -to %s%s\n", goroutines, rounds, calls, to, flags)
	fmt.Printf("Machine: %s/%s, %d CPUs, %s; date %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	fmt.Println("| measure | median | min | max |")
	fmt.Println("|---|---|---|---|")
	dur := func(name string, d []time.Duration) {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		fmt.Printf("| %s | %v | %v | %v |\n", name, d[len(d)/2].Round(10*time.Microsecond), d[0].Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond))
	}
	ns := func(name string, v []float64) {
		sort.Float64s(v)
		fmt.Printf("| %s | %.2f ns | %.2f ns | %.2f ns |\n", name, v[len(v)/2], v[0], v[len(v)-1])
	}
	dur("make (diff + generate + plugin build + sign)", makeT)
	dur(fmt.Sprintf("apply, client-observed (verify + load + safe point + install), %d goroutines", goroutines), applyT)
	dur(fmt.Sprintf("  of which safe point wait (goroutine profile scan), %d goroutines", goroutines), safeT)
	dur("revert", revertT)
	ns("call guard.Check: plain go build", plainNs)
	ns("call guard.Check: graft build, dormant point", dormantNs)
	ns("call guard.Check: patched (replacement via slot)", patchedNs)
	if perCall != nil {
		fmt.Printf("\nInstructions per call of guard.Check (callgrind, %d calls, the request's own cost included): plain %.1f, dormant %.1f, patched %.1f\n", calls, perCall[0], perCall[1], perCall[2])
	}
	return nil
}

// awaitRT waits for the server's rt admin socket to answer.
func awaitRT(ctx context.Context, sock string) error {
	for i := 0; ; i++ {
		_, err := patch.List(ctx, sock)
		if err == nil {
			return nil
		}
		if i == 3000 {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(bin string, goroutines int, env ...string) (*exec.Cmd, string, error) {
	return startCmd(bin, nil, goroutines, env...)
}

// startCmd starts a server (name args: the binary, or a tool that runs
// it) and reads the address it serves on.
func startCmd(name string, args []string, goroutines int, env ...string) (*exec.Cmd, string, error) {
	c := exec.Command(name, args...)
	c.Env = append(append(os.Environ(), "GOROUTINES="+strconv.Itoa(goroutines)), env...)
	c.Stderr = os.Stderr
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := c.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop(c)
		return nil, "", fmt.Errorf("%s said nothing: %w", name, err)
	}
	go io.Copy(io.Discard, out)
	return c, strings.TrimSpace(strings.TrimPrefix(line, "addr ")), nil
}

func stop(c *exec.Cmd) {
	c.Process.Kill()
	c.Wait()
}

func cp(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(t, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(t, b, 0o644)
	})
}
