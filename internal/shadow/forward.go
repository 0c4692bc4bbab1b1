package shadow

import (
	"context"
	"io"
	"net"

	"github.com/graftdev/graft/internal/shadow/worker"
)

// The e2e tests' TestMain still names these; they go once it names package
// worker (another change edits that file's imports at the same time).
const WorkerEnv = worker.Env

func WorkerConn(getenv func(string) string) (net.Conn, error) { return worker.Conn(getenv) }

func ServeWorker(ctx context.Context, conn io.ReadWriteCloser) error { return worker.Serve(ctx, conn) }
