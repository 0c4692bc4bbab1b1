package demo

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graftdev/graft/internal/listener"
)

// TestMain lets the test binary act as the sample service, as graft does.
func TestMain(m *testing.M) {
	listener.MaybeShim()
	if len(os.Args) == 3 && os.Args[1] == ServiceArg {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		svc := &Service{Generation: os.Getenv("GRAFT_GENERATION")}
		if err := svc.Serve(ctx, os.Args[2]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestDemoUpgradesWithoutFailures(t *testing.T) {
	var out strings.Builder
	sum, err := Run(t.Context(), Options{Upgrades: 2, Pause: 200 * time.Millisecond, Out: &out})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if sum.Upgrades != 2 {
		t.Errorf("upgrades = %d, want 2", sum.Upgrades)
	}
	if sum.Load.Requests == 0 || sum.Load.Posts == 0 {
		t.Errorf("load sent %d requests, %d POSTs; want both > 0", sum.Load.Requests, sum.Load.Posts)
	}
	if n := sum.Load.Failures(); n != 0 {
		t.Errorf("%d failed requests: %v", n, sum.Load.Errors)
	}
	if len(sum.Cutovers) != 2 {
		t.Errorf("saw %d upgraded generations answer, want 2", len(sum.Cutovers))
	}
	if !strings.Contains(out.String(), "failed requests      0") {
		t.Errorf("summary lacks the failure count:\n%s", out.String())
	}
}
