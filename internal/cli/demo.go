package cli

import "context"

func cmdDemo(ctx context.Context, env *Env, args []string) error { return errNotYet }
