package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/graftdev/graft/internal/instrument"
	"github.com/graftdev/graft/internal/patch"
)

// writeHarness makes a main module that requires the module at src (the
// vulnerable version's fetched copy, which is also the diff's old tree,
// or the fixed version's for the reference run; tag "" or "fixed") and
// imports every package of the tree.
func writeHarness(ctx context.Context, work string, f fix, src, fixed string, t *patch.Tree, tag string) (string, error) {
	dir := filepath.Join(work, "harness-"+safe(f.id)+dash(tag))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	version := f.from
	if tag == "fixed" {
		version = f.to
	}
	mod := fmt.Sprintf("module example.com/harness\n\ngo 1.22\n\nrequire %s %s\n\nreplace %s => %s\n", f.module, version, f.module, src)
	var imports strings.Builder
	named := map[string]bool{"fmt": true, "net": true, "net/http": true, "os": true, "syscall": true, "time": true}
	rp, hasRepro := repros[f.id]
	for _, p := range rp.imports {
		named[p] = true
	}
	for _, p := range slices.Sorted(maps.Keys(named)) {
		fmt.Fprintf(&imports, "\t%q\n", p)
	}
	for _, path := range slices.Sorted(maps.Keys(t.Pkgs)) {
		// Internal packages cannot be imported from here; the public ones
		// that use them link them.
		if !named[path] && !strings.Contains(path+"/", "/internal/") {
			fmt.Fprintf(&imports, "\t_ %q\n", path)
		}
	}
	body := "return \"no reproducer\""
	if hasRepro {
		body = strings.ReplaceAll(rp.repro, "{{FIXED}}", fixed)
	}
	// /repro?wait=D waits D (default the table's timeout) for the answer,
	// and says how long it took and how much CPU the process used
	// meanwhile (user+system, all threads: the collector's work included),
	// which a machine shared with other builds disturbs less than the wall
	// time.
	src2 := "package main\n\nimport (\n" + imports.String() + ")\n\n" + reproDecls[f.id] + "\n" +
		"func repro() (res string) {\n\tdefer func() {\n\t\tif p := recover(); p != nil {\n\t\t\tres = fmt.Sprint(\"panic: \", p)\n\t\t}\n\t}()\n\t" + body + "\n}\n\n" +
		"func cpuTime() time.Duration {\n\tvar ru syscall.Rusage\n\tsyscall.Getrusage(syscall.RUSAGE_SELF, &ru)\n\treturn time.Duration(ru.Utime.Nano() + ru.Stime.Nano())\n}\n\n" +
		"func main() {\n\tln, err := net.Listen(\"tcp\", \"127.0.0.1:0\")\n\tif err != nil {\n\t\tos.Exit(1)\n\t}\n\tfmt.Println(\"addr\", ln.Addr())\n" +
		"\thttp.HandleFunc(\"/repro\", func(w http.ResponseWriter, r *http.Request) {\n\t\twait, err := time.ParseDuration(r.FormValue(\"wait\"))\n\t\tif err != nil {\n\t\t\twait = time.Duration(" + fmt.Sprint(int64(reproTimeout)) + ")\n\t\t}\n" +
		"\t\tch := make(chan string, 1)\n\t\tstart := time.Now()\n\t\tgo func() {\n\t\t\tc0 := cpuTime()\n\t\t\ts := repro()\n\t\t\tch <- fmt.Sprintf(\"%s (in %v, cpu %v)\", s, time.Since(start).Round(time.Millisecond), (cpuTime() - c0).Round(time.Millisecond))\n\t\t}()\n" +
		"\t\tselect {\n\t\tcase s := <-ch:\n\t\t\tfmt.Fprint(w, s)\n\t\tcase <-time.After(wait):\n\t\t\tfmt.Fprintf(w, \"timeout (%v)\", wait)\n\t\t}\n\t})\n\thttp.Serve(ln, nil)\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src2), 0o644); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "mod", "tidy")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod"), f.env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod tidy: %v: %s", err, out)
	}
	return dir, nil
}

func dash(tag string) string {
	if tag == "" {
		return ""
	}
	return "-" + tag
}

// buildHarness writes the harness for the module at src and builds it
// with graft build --patchable, exactly as the vulnerable one.
func buildHarness(ctx context.Context, work string, f fix, src, fixed string, t *patch.Tree, tag string, inst []string) (string, error) {
	dir, err := writeHarness(ctx, work, f, src, fixed, t, tag)
	if err != nil {
		return "", fmt.Errorf("harness: %w", err)
	}
	b, err := instrument.Prepare(ctx, instrument.Options{Dir: dir, Patterns: []string{"."}, Instrument: inst, Patchable: true, Env: f.env()})
	if err != nil {
		return "", fmt.Errorf("graft build of the %s harness: %w", tag, err)
	}
	return linkHarness(ctx, b, work, f, tag)
}

// linkHarness runs go build on the prepared harness.
func linkHarness(ctx context.Context, b *instrument.Build, work string, f fix, tag string) (string, error) {
	bin := filepath.Join(work, "harness-"+safe(f.id)+dash(tag)+".bin")
	cmd, err := b.Command(ctx, "build", nil, "-o", bin, ".")
	if err != nil {
		return "", err
	}
	cmd.Env = append(cmd.Env, "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s harness: %v: %s", tag, err, out)
	}
	return bin, nil
}

// proc is a running harness program.
type proc struct {
	cmd        *exec.Cmd
	addr, sock string
	stopped    bool
}

// startProc starts bin and reads the address it serves /repro on.
func startProc(bin, work string) (*proc, error) { return startProcWith(work, nil, bin) }

// startProcWith starts a harness with a command line (a harness binary,
// or a tool that runs one) and more environment.
func startProcWith(work string, env []string, name string, args ...string) (*proc, error) {
	h := &proc{sock: filepath.Join(work, fmt.Sprintf("rt-%d.sock", time.Now().UnixNano()))}
	h.cmd = exec.Command(name, args...)
	h.cmd.Env = append(append(os.Environ(), env...), "GRAFT_RT_SOCKET="+h.sock)
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := h.cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		h.stop()
		return nil, fmt.Errorf("harness said nothing: %w", err)
	}
	go io.Copy(io.Discard, out)
	h.addr = strings.TrimSpace(strings.TrimPrefix(line, "addr "))
	return h, nil
}

// awaitSocket waits for the rt admin socket to answer.
func (h *proc) awaitSocket(ctx context.Context) error {
	for i := 0; ; i++ {
		_, err := patch.List(ctx, h.sock)
		if err == nil {
			return nil
		}
		if i == 500 {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// repro triggers the bug once, waiting at most wait for the answer.
func (h *proc) repro(wait time.Duration) (string, error) {
	resp, err := http.Get("http://" + h.addr + "/repro?wait=" + url.QueryEscape(wait.String()))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func (h *proc) stop() {
	if !h.stopped {
		h.stopped = true
		h.cmd.Process.Kill()
		h.cmd.Wait()
	}
}

// answerOnce starts bin, patches it with apply if set, triggers once and
// stops it.
func answerOnce(bin, work string, apply func(*proc) error, wait time.Duration) (string, error) {
	h, err := startProc(bin, work)
	if err != nil {
		return "", err
	}
	defer h.stop()
	if apply != nil {
		if err := apply(h); err != nil {
			return "", err
		}
	}
	return h.repro(wait)
}

// timedOut reports whether an answer is the harness's timeout.
func timedOut(answer string) bool { return strings.HasPrefix(answer, "timeout") }

// noAnswer reports whether an unpatched trigger gave no answer: the
// timeout, or a process that died first.
func noAnswer(answer string) bool { return timedOut(answer) || strings.HasPrefix(answer, crashed) }

// stripTime drops the harness's " (in D)" from an answer.
func stripTime(answer string) string {
	if i := strings.LastIndex(answer, " (in "); i >= 0 && strings.HasSuffix(answer, ")") {
		return answer[:i]
	}
	return answer
}

// answerTimes are the wall and CPU times of an answer's " (in D, cpu C)"
// (0 for a timeout).
func answerTimes(answer string) (wall, cpu time.Duration) {
	i := strings.LastIndex(answer, " (in ")
	if i < 0 || !strings.HasSuffix(answer, ")") {
		return 0, 0
	}
	w, c, _ := strings.Cut(answer[i+len(" (in "):len(answer)-1], ", cpu ")
	wall, _ = time.ParseDuration(w)
	cpu, _ = time.ParseDuration(c)
	return wall, cpu
}

// slowRule is the rule for a row whose unpatched trigger does not answer
// within the timeout (a hang or a CPU-time denial of service), or where
// the patched program or the fixed release does not, so that the
// timeout cannot tell "fixed" from "slow" whatever the machine's load. The
// unpatched, the patched and the fixed-release harness each answer the
// trigger slowRounds times, interleaved, in fresh processes, waiting up to
// slowWait; then the patched and the fixed-release harness answer it
// slowRounds times more each, interleaved, under callgrind
// (instructions.go). The row counts as stopped when every patched answer
// equals the fixed release's answers, the unpatched median CPU time
// exceeds the fixed release's largest (the trigger still separates
// vulnerable from fixed), and the patched program's median instruction
// count on the trigger is at most instructionRatio times the fixed
// release's median. CPU time, not wall time: the machine these run on is
// shared, and waiting for a core is not the program's cost.
// Instructions, not CPU time, between patched and fixed: they are two
// binaries, and CPU time depends on their layout (instructions.go). An
// answer that times out counts as slowWait, and so does an unpatched
// process that dies before answering.
const slowRounds = 3

// slowWait bounds each answer of the time comparison: ten times the table's
// timeout.
func slowWait() time.Duration { return 10 * reproTimeout }

// crashed prefixes an unpatched answer whose process died before
// answering; in the time comparison it counts as slowWait.
const crashed = "crashed, no answer: "

// slowRun is the time comparison's answers, and the instruction counts of
// the patched program and the fixed release (with their answers).
type slowRun struct {
	unpatched, patched, fixed []string
	instr                     [2][]uint64 // patched, fixed release
	instrAnswers              []string
	instrErr                  error
}

func compareSlow(ctx context.Context, bin, fixedBin, work string, apply func(*proc) error) (*slowRun, error) {
	r := &slowRun{}
	for range slowRounds {
		for _, run := range []struct {
			bin   string
			apply func(*proc) error
			into  *[]string
		}{{bin, nil, &r.unpatched}, {bin, apply, &r.patched}, {fixedBin, nil, &r.fixed}} {
			a, err := answerOnce(run.bin, work, run.apply, slowWait())
			if err != nil && run.into == &r.unpatched {
				// Given ten times the timeout, an unpatched trigger may
				// take the process down (memory); that is the bug too.
				a, err = crashed+err.Error(), nil
			}
			if err != nil {
				return r, err
			}
			*run.into = append(*run.into, a)
		}
	}
	for range slowRounds {
		for i, run := range []struct {
			bin   string
			apply func(*proc) error
		}{{bin, apply}, {fixedBin, nil}} {
			n, a, err := countInstructions(run.bin, work, run.apply)
			if err != nil {
				r.instrErr = err
				return r, nil
			}
			r.instr[i] = append(r.instr[i], n)
			r.instrAnswers = append(r.instrAnswers, a)
		}
	}
	return r, nil
}

// verdict applies slowRule.
func (r *slowRun) verdict() (bool, string) {
	if r == nil {
		return false, "no time comparison"
	}
	times := func(as []string) []time.Duration {
		var ds []time.Duration
		for _, a := range as {
			_, d := answerTimes(a)
			if noAnswer(a) {
				d = slowWait()
			}
			ds = append(ds, d)
		}
		return ds
	}
	u, p, f := times(r.unpatched), times(r.patched), times(r.fixed)
	fmax := slices.Max(f)
	same := true
	for _, a := range r.patched {
		if bad(a) || stripTime(a) != stripTime(r.fixed[0]) {
			same = false
		}
	}
	for _, a := range append(slices.Clone(r.fixed), r.instrAnswers...) {
		if bad(a) || stripTime(a) != stripTime(r.fixed[0]) {
			same = false
		}
	}
	detail := fmt.Sprintf("CPU times (%d interleaved rounds, fresh processes, up to %v each): unpatched %v, patched %v, fixed release %v: unpatched median %v vs fixed release's largest %v",
		slowRounds, slowWait(), u, p, f, median(u), fmax)
	if died := slices.DeleteFunc(slices.Clone(r.unpatched), func(a string) bool { return !strings.HasPrefix(a, crashed) }); len(died) > 0 {
		detail += fmt.Sprintf(" (%d of the unpatched processes died before answering: %s)", len(died), strings.TrimPrefix(died[0], crashed))
	}
	var ratio float64
	if r.instrErr != nil {
		detail += fmt.Sprintf("; instructions not counted: %v", r.instrErr)
	} else {
		pm, fm := median(r.instr[0]), median(r.instr[1])
		ratio = float64(pm) / float64(fm)
		detail += fmt.Sprintf("; instructions on the trigger (callgrind, %d interleaved rounds): patched %v, fixed release %v: medians %.3f× (at most %.2f×)", slowRounds, r.instr[0], r.instr[1], ratio, instructionRatio)
	}
	ok := same && r.instrErr == nil && ratio <= instructionRatio && median(u) > fmax
	if !same {
		detail += "; the patched answers differ from the fixed release's"
	}
	return ok, detail
}

// median is the middle of xs (the upper one of an even count).
func median[T cmp.Ordered](xs []T) T { s := slices.Sorted(slices.Values(xs)); return s[len(s)/2] }
