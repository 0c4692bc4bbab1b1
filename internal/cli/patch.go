package cli

import "context"

func cmdPatch(ctx context.Context, env *Env, args []string) error { return errNotYet }
