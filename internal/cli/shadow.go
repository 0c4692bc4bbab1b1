package cli

import "context"

func cmdShadow(ctx context.Context, env *Env, args []string) error { return errNotYet }

func cmdReport(ctx context.Context, env *Env, args []string) error { return errNotYet }
