package cli

import "context"

func cmdChecks(ctx context.Context, env *Env, args []string) error { return errNotYet }
