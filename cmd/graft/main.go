// Command graft is runtime software patching for services: live update,
// proof on live traffic, self-healing and in-process patching of Go programs.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/graftdev/graft/internal/cli"
	"github.com/graftdev/graft/internal/listener"
)

func main() {
	listener.MaybeShim() // never returns when graft runs as a generation's exec shim
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, cli.ErrUsage) {
			fmt.Fprintln(os.Stderr, "graft:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	if errors.Is(err, cli.ErrUsage) {
		return 2
	}
	return 1
}
