package rt

import (
	"os"
	"strconv"
	"strings"
)

// Environment read at start (GRAFT_SEALED is set by a supervisor that sealed
// a crashing function; GRAFT_SITES by one that restarts a program with
// sites switched on):
//
//	GRAFT_SEALED=ID,ID          patch points to start sealed
//	GRAFT_SITES=ID[=LIMIT],...  check sites to start switched on
//	GRAFT_RT_SOCKET=PATH        serve the rt admin socket at PATH (mode 0600)
func init() {
	mu.Lock()
	for _, id := range splitList(os.Getenv("GRAFT_SEALED")) {
		envSealed[id] = true
	}
	for _, item := range splitList(os.Getenv("GRAFT_SITES")) {
		id, lim := item, int64(0)
		if i := strings.LastIndexByte(item, '='); i > 0 {
			if n, err := strconv.ParseInt(item[i+1:], 10, 64); err == nil {
				id, lim = item[:i], n
			}
		}
		envSites[id] = lim
	}
	mu.Unlock()
	if path := os.Getenv("GRAFT_RT_SOCKET"); path != "" {
		// A program that cannot serve its admin socket still runs; graft
		// checks reports the socket missing.
		_ = startAdmin(path)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
