package cli

import "context"

func cmdRun(ctx context.Context, env *Env, args []string) error { return errNotYet }
