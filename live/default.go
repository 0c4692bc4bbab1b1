package live

import (
	"context"
	"net"
	"net/http"
	"sync"
)

var std = sync.OnceValue(func() *Gen { return New(Options{}) })

// Default is the process-wide Gen behind the package-level functions,
// created from the environment on first use.
func Default() *Gen { return std() }

// Listen returns the inherited listener called name, or binds addr when run
// without a supervisor. See Gen.Listen.
func Listen(name, addr string) (net.Listener, error) { return std().Listen(name, addr) }

// Inherited lists the inherited listeners not yet taken. See Gen.Inherited.
func Inherited() []string { return std().Inherited() }

// Register adds a state item to the default Gen. See Gen.Register.
func Register(it Item) error { return std().Register(it) }

// Migrate registers a migration from version from to from+1. See Gen.Migrate.
func Migrate(name string, from int, m Migration) error { return std().Migrate(name, from, m) }

// MigrateDown registers a migration from version from to from-1. See
// Gen.MigrateDown.
func MigrateDown(name string, from int, m Migration) error {
	return std().MigrateDown(name, from, m)
}

// Ready loads the handed-down state and announces readiness. See Gen.Ready.
func Ready() error { return std().Ready() }

// Serve serves HTTP until the generation has drained. See Gen.Serve.
func Serve(ln net.Listener, h http.Handler) error { return std().Serve(ln, h) }

// Update runs a mutation of registered state. See Gen.Update.
func Update(ctx context.Context, fn func() error) error { return std().Update(ctx, fn) }

// Mutating wraps a handler that changes registered state. See Gen.Mutating.
func Mutating(h http.Handler) http.Handler { return std().Mutating(h) }

// Draining ends when the generation is asked to drain. See Gen.Draining.
func Draining() context.Context { return std().Draining() }
