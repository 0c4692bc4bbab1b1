package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/supervisor"
)

const runSynopsis = `run [--admin SOCK] --listen NAME=ADDR... [--proxy] [--ready SPEC] [--probation DUR] [--drain DUR] [--start-timeout DUR] [--stop-signal SIG] [--metrics ADDR] [--admin-tcp ADDR --admin-token-file FILE] -- CMD [ARG...]`

const runHelp = `
Supervise a service: own its listeners and run CMD as numbered generations,
replaced by 'graft upgrade' without failing requests.

Socket mode (default) passes the listeners to each generation with the
systemd socket-activation protocol (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES);
readiness is READY=1 on NOTIFY_SOCKET unless --ready delay:DUR is given.
Proxy mode (--proxy) serves HTTP itself and proxies to each generation's
private address: {port} and {addr} in CMD's arguments and PORT in its
environment; readiness defaults to tcp (its address accepts).

ADDR is host:port or unix:/path. When graft itself is socket-activated, the
inherited sockets are adopted by name (LISTEN_FDNAMES) instead of bound.
--ready: notify | delay:DUR (socket mode); tcp | http:/PATH | notify | delay:DUR (proxy mode).
See docs/supervisor.md.
`

func cmdRun(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "run", runSynopsis, runHelp)
	admin := adminFlag(env, fs)
	var listen multiFlag
	fs.Var(&listen, "listen", "public listener `NAME=ADDR` (repeatable; ADDR host:port or unix:/path)")
	proxyMode := fs.Bool("proxy", false, "proxy mode: graft terminates HTTP and proxies to the generation")
	ready := fs.String("ready", "", "readiness `SPEC`: notify, tcp, http:/PATH, delay:DUR (default notify in socket mode, tcp in proxy mode)")
	probation := fs.Duration("probation", 30*time.Second, "how long the previous generation stays parked for rollback")
	drain := fs.Duration("drain", 30*time.Second, "deadline for a generation to finish in-flight work before SIGKILL")
	startTimeout := fs.Duration("start-timeout", 60*time.Second, "how long a new generation may take to be ready")
	stopSignal := fs.String("stop-signal", "TERM", "signal that asks a generation to drain and exit")
	metrics := fs.String("metrics", "", "also serve Prometheus metrics on `ADDR` (host:port)")
	adminTCP := fs.String("admin-tcp", "", "also serve the admin API on TCP `ADDR` (needs --admin-token-file)")
	tokenFile := fs.String("admin-token-file", "", "`FILE` holding the bearer token for --admin-tcp")
	features := addFeatureFlags(fs)
	if err := parse(env, fs, args); err != nil {
		return err
	}
	cmd := fs.Args()
	if len(cmd) == 0 {
		fmt.Fprintln(env.Stderr, "graft run: missing command after --")
		fs.Usage()
		return ErrUsage
	}
	var specs []listener.Spec
	for _, l := range listen {
		sp, err := listener.Parse(l)
		if err != nil {
			return err
		}
		specs = append(specs, sp)
	}
	if len(specs) == 0 {
		fmt.Fprintln(env.Stderr, "graft run: at least one --listen NAME=ADDR is needed")
		return ErrUsage
	}
	sig, err := parseSignal(*stopSignal)
	if err != nil {
		return err
	}
	var token string
	if *adminTCP != "" {
		if *tokenFile == "" {
			return errors.New("--admin-tcp needs --admin-token-file")
		}
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("read admin token: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return fmt.Errorf("admin token file %s is empty", *tokenFile)
		}
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, nil))
	s, err := supervisor.New(supervisor.Options{
		Listen:       specs,
		Inherited:    listener.InheritedSockets(env.Getenv, os.Getpid()),
		Command:      cmd,
		Proxy:        *proxyMode,
		Ready:        *ready,
		Probation:    *probation,
		Drain:        *drain,
		StartTimeout: *startTimeout,
		StopSignal:   sig,
		AdminSocket:  *admin,
		AdminTCP:     *adminTCP,
		AdminToken:   token,
		MetricsAddr:  *metrics,
		NotifySocket: env.Getenv("NOTIFY_SOCKET"),
		Env:          os.Environ(),
		Logger:       log,
		Output:       env.Stderr,
	})
	if err != nil {
		return err
	}
	runFeatures, err := attachFeatures(s, features, *admin)
	if err != nil {
		return err
	}
	log.Info("graft run", "admin", *admin, "listen", strings.Join(s.Addrs(), ","), "proxy", *proxyMode)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	featuresDone := make(chan error, 1)
	go func() { featuresDone <- runFeatures(ctx) }()
	err = s.Run(ctx)
	cancel()
	if ferr := <-featuresDone; err == nil && ferr != nil && !errors.Is(ferr, context.Canceled) {
		err = ferr
	}
	return err
}

var signals = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "HUP": syscall.SIGHUP,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH, "KILL": syscall.SIGKILL,
}

func parseSignal(s string) (syscall.Signal, error) {
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := signals[name]; ok {
		return sig, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	return 0, fmt.Errorf("unknown stop signal %q", s)
}
