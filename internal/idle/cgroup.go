package idle

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// GroupName is the cpu cgroup, a child of this process's own, that idle
// processes are moved into where this process may create it.
const GroupName = "graft-idle"

var group struct {
	once sync.Once
	dir  string // "" when none could be made
	err  error
}

// Group returns the directory of the idle cpu cgroup, creating it the
// first time: a child of this process's cpu cgroup with cpu.idle = 1,
// which makes the whole group idle to the scheduler (Linux ≥ 5.15): it
// weighs as little as a SCHED_IDLE task against its siblings, and a
// waking non-idle sibling preempts it at once. SCHED_IDLE alone only ranks
// the tasks of one group; a group that holds idle tasks next to the
// service otherwise spends the service's share of the machine on them
// against other groups (other sessions' autogroups, other units). The
// error says why there is none (not root and no delegation, no cpu
// controller, an older kernel, a cgroup v2 parent with processes in it).
func Group() (string, error) {
	group.once.Do(func() { group.dir, group.err = makeGroup() })
	return group.dir, group.err
}

func makeGroup() (string, error) {
	base, rel, err := cpuCgroup()
	if err != nil {
		return "", fmt.Errorf("idle cgroup: %w", err)
	}
	dir := filepath.Join(base, rel, GroupName)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("idle cgroup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu.idle"), []byte("1"), 0); err != nil {
		os.Remove(dir) // only if empty: another process may use it
		return "", fmt.Errorf("idle cgroup: %w", err)
	}
	return dir, nil
}

// cpuCgroup finds where the cpu controller is mounted and this process's
// path in it, for cgroup v1 (a hierarchy with the cpu controller) or v2.
func cpuCgroup() (mount, rel string, err error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	var v2 string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "cpu" {
				for _, m := range []string{"/sys/fs/cgroup/" + parts[1], "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"} {
					if _, err := os.Stat(filepath.Join(m, "cpu.shares")); err == nil {
						return m, parts[2], nil
					}
				}
			}
		}
	}
	if v2 != "" {
		if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(" "+string(b)+" ", " cpu ") {
			return "/sys/fs/cgroup", v2, nil
		}
	}
	return "", "", errors.New("no cpu cgroup controller")
}

// Join moves process pid, all its threads, into the idle cgroup, if there
// is one; it says whether it did.
func Join(pid int) (bool, error) {
	dir, err := Group()
	if dir == "" {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return false, fmt.Errorf("idle cgroup: move %d: %w", pid, err)
	}
	return true, nil
}
