package cli

import (
	"context"
	"fmt"
	"runtime/debug"
)

func cmdVersion(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "version", "version", "Print graft's version and the Go toolchain it was built with.")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	version := "(devel)"
	goVersion := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		version, goVersion = info.Main.Version, info.GoVersion
	}
	fmt.Fprintf(env.Stdout, "graft %s %s\n", version, goVersion)
	return nil
}
