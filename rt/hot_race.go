//go:build race

package rt

import "sync/atomic"

// hot is isOn in race builds (hot_norace.go says why it differs).
func (s *Site) hot() bool { return atomic.LoadUint32(&s.on) != 0 }
