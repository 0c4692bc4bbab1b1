package cli

import "context"

func cmdBuild(ctx context.Context, env *Env, args []string) error { return errNotYet }

func cmdTest(ctx context.Context, env *Env, args []string) error { return errNotYet }
