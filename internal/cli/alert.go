package cli

import "context"

func cmdAlert(ctx context.Context, env *Env, args []string) error { return errNotYet }
