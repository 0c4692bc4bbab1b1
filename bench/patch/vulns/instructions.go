package main

// Counting the instructions one trigger executes, under valgrind's
// callgrind: the part of the time rule (slowRule) that compares the patched
// program with the fixed release.
//
// Why instructions and not CPU time: the two are different binaries, and
// the hot loops of a decoder run at speeds that depend on where the linker
// happened to put them. Measured on GO-2022-0956 (2026-11-30): the
// vulnerable harness, with no patch applied, took 1.3× the fixed release's
// CPU time on an input both parse (9,000 nested '['), in code that is the
// same in both versions (yaml_parser_fetch_more_tokens, 73% of the
// instructions) and the same count of instructions; the function starts at
// 0x…3e0 in one binary and 0x…4c0 in the other. Executed instructions do
// not depend on layout, nor on the machine's load.

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/graftdev/graft/bench/internal/callgrind"
)

// instructionsWait bounds one answer under callgrind, which runs a Go
// program about 75 times slower.
const instructionsWait = 10 * time.Minute

// instructionRatio is how many more instructions than the fixed release's
// the patched program may execute on the trigger: graft's own per-call
// costs (the patch point's slow path, host calls through the build's
// exports, side tables for new fields), which the call-overhead benchmark
// measures on its own. A fix that still does super-linear work, the case
// the rule exists for, is far beyond it.
const instructionRatio = 1.10

// countInstructions starts bin under callgrind with counting off, applies
// the patch if apply is set, counts the instructions of one trigger, and
// returns them with the answer.
func countInstructions(bin, work string, apply func(*proc) error) (uint64, string, error) {
	out := filepath.Join(work, fmt.Sprintf("callgrind-%d.out", time.Now().UnixNano()))
	name, args, err := callgrind.Command(out, bin)
	if err != nil {
		return 0, "", err
	}
	h, err := startProcWith(work, callgrind.Env, name, args...)
	if err != nil {
		return 0, "", err
	}
	defer h.stop()
	if apply != nil {
		if err := apply(h); err != nil {
			return 0, "", err
		}
	}
	var answer string
	n, err := callgrind.Attach(h.cmd.Process.Pid, out).Count(func() (err error) {
		answer, err = h.repro(instructionsWait)
		return err
	})
	return n, answer, err
}
