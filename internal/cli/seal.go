package cli

import "context"

func cmdSeal(ctx context.Context, env *Env, args []string) error { return errNotYet }
