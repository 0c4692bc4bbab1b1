package live_test

import (
	"os"
	"syscall"

	"github.com/graftdev/graft/api"
)

func osPipeSocket() (r, w *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w"), nil
}

func handoffMsg() api.Control { return api.Control{Type: api.CtlHandoff} }
func resumeMsg() api.Control  { return api.Control{Type: api.CtlResume} }
