package cli

import "context"

func cmdUpgrade(ctx context.Context, env *Env, args []string) error { return errNotYet }

func cmdRollback(ctx context.Context, env *Env, args []string) error { return errNotYet }
