package worker

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary be a worker process: started by Start with
// Env set (TestWorkerPriority), it serves the worker protocol instead of
// running the tests.
func TestMain(m *testing.M) {
	if os.Getenv(Env) != "" {
		conn, err := Conn(os.Getenv)
		if err == nil {
			err = Serve(context.Background(), conn)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
