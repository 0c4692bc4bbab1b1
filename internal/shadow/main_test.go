package shadow

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/graftdev/graft/internal/shadow/worker"
)

// TestMain lets the test binary be graft's shadow worker process: started
// by a Controller with worker.Env set (testWorker), it serves the worker
// protocol instead of running the tests.
func TestMain(m *testing.M) {
	if os.Getenv(worker.Env) != "" {
		conn, err := worker.Conn(os.Getenv)
		if err == nil {
			err = worker.Serve(context.Background(), conn)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testWorker runs the worker as a real process: this test binary. It runs
// at normal priority: at SCHED_IDLE on a machine kept busy by other tests
// it could wait for a CPU for a long time; TestWorkerPriority checks idle.
func testWorker() *worker.Command {
	return &worker.Command{Path: os.Args[0], Stderr: os.Stderr, Priority: PriorityNormal}
}
