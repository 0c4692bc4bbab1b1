package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/client"
)

const upgradeHelp = `
Start the next generation (CMD, or the serving generation's command line
again, resolved anew on disk so a replaced binary is picked up), wait until
it is ready, cut over and park the previous generation for the probation.
Exits 0 once the new generation serves; non-zero with the reason when it
failed (the previous generation keeps serving). Upgrades are serialized: a
second one while one runs is refused.
`

func cmdUpgrade(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "upgrade", "upgrade [--admin SOCK] [--json] [-- CMD [ARG...]]", upgradeHelp)
	admin := adminFlag(env, fs)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	cmd := fs.Args()
	if len(cmd) > 0 && strings.Contains(cmd[0], "/") && !filepath.IsAbs(cmd[0]) {
		// The supervisor runs in its own directory: "./server" means the
		// caller's.
		abs, err := filepath.Abs(cmd[0])
		if err != nil {
			return err
		}
		cmd = append([]string{abs}, cmd[1:]...)
	}
	res, err := client.New(*admin).Upgrade(ctx, api.UpgradeRequest{Command: cmd})
	if err != nil {
		return err // the supervisor's reason already names the operation
	}
	return printResult(env, res, *asJSON, "upgraded")
}

const rollbackHelp = `
Go back to the parked generation at once (during the probation), or else
start the previous command line as a new generation. Exits 0 once it serves.
`

func cmdRollback(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "rollback", "rollback [--admin SOCK] [--json]", rollbackHelp)
	admin := adminFlag(env, fs)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	res, err := client.New(*admin).Rollback(ctx)
	if err != nil {
		return err
	}
	return printResult(env, res, *asJSON, "rolled back")
}

func printResult(env *Env, res *api.UpgradeResult, asJSON bool, verb string) error {
	if asJSON {
		return printJSON(env.Stdout, res)
	}
	fmt.Fprintf(env.Stdout, "%s: generation %d serves", verb, res.Generation)
	if res.Previous != 0 {
		fmt.Fprintf(env.Stdout, " (generation %d before it)", res.Previous)
	}
	if res.ReadyMS > 0 {
		fmt.Fprintf(env.Stdout, ", ready in %.1f ms", res.ReadyMS)
	}
	fmt.Fprintln(env.Stdout)
	return nil
}
