package live_test

import (
	"os"
	"testing"

	"github.com/graftdev/graft/live/internal/kvtest"
	"github.com/graftdev/graft/live/livetest"
)

// The test binary doubles as the generations the tests start: with
// live-child on its command line it runs kvtest's server instead.
func TestMain(m *testing.M) {
	livetest.MaybeShim()
	kvtest.MaybeChild()
	os.Exit(m.Run())
}

var (
	childArgs = kvtest.Args
	sum       = kvtest.Sum
)
