// Package callgrind counts the instructions a running program executes
// between two moments, under valgrind's callgrind, for benchmarks whose
// wall-clock figures this machine's noise would swamp: an instruction
// count depends neither on the load nor on where the linker put the hot
// loops. The program starts with counting off; Count switches it on
// around one piece of work (a request) and reads the dump.
package callgrind

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Env is what a Go program needs in its environment under callgrind:
// asynchronous preemption's signals make its runs unreliable.
var Env = []string{"GODEBUG=asyncpreemptoff=1"}

// Command returns the command line that runs bin with args under
// callgrind, counting off, writing its dumps to out.1, out.2, ...
func Command(out, bin string, args ...string) (string, []string, error) {
	if _, err := exec.LookPath("valgrind"); err != nil {
		return "", nil, fmt.Errorf("valgrind is not installed (apt-get install -y valgrind): %w", err)
	}
	return "valgrind", append([]string{"--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + out, bin}, args...), nil
}

// Process is a program running under Command.
type Process struct {
	pid   string
	out   string
	dumps int
}

// Attach names the program Command started (pid) and its out file.
func Attach(pid int, out string) *Process { return &Process{pid: strconv.Itoa(pid), out: out} }

// Count returns the instructions the whole process executes while work
// runs (every thread: the collector's too).
func (p *Process) Count(work func() error) (uint64, error) {
	if err := control("-i", "on", p.pid); err != nil {
		return 0, err
	}
	werr := work()
	if err := control("-i", "off", p.pid); err != nil {
		return 0, err
	}
	if werr != nil {
		return 0, werr
	}
	if err := control("-d", p.pid); err != nil {
		return 0, err
	}
	p.dumps++
	return Total(fmt.Sprintf("%s.%d", p.out, p.dumps))
}

func control(args ...string) error {
	if out, err := exec.Command("callgrind_control", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("callgrind_control %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Total reads the instruction count of a callgrind dump: its "totals:"
// line at the end (the "summary:" line at the top counts only what ran
// before counting was switched on: 0 here).
func Total(file string) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "totals: "); ok {
			return strconv.ParseUint(strings.Fields(rest)[0], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no totals line", file)
}
