package cli

import (
	"context"
	"fmt"

	"github.com/graftdev/graft/internal/shadow/worker"
)

// shadowWorkerArg is graft's hidden command for the shadow's worker
// process. graft starts it itself, at the lanes' CPU priority, with its end
// of a socket as descriptor 3 (internal/shadow/worker, docs/shadow.md); it
// is not listed in --help and refuses to run when started any other way.
const shadowWorkerArg = worker.Arg

func cmdShadowWorker(ctx context.Context, env *Env, args []string) error {
	if len(args) != 0 {
		fmt.Fprintf(env.Stderr, "graft %s: takes no arguments (graft starts it for graft shadow)\n", shadowWorkerArg)
		return ErrUsage
	}
	conn, err := worker.Conn(env.Getenv)
	if err != nil {
		return err
	}
	return worker.Serve(ctx, conn)
}
