package cli

import "context"

func cmdStatus(ctx context.Context, env *Env, args []string) error { return errNotYet }
