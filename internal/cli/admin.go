package cli

import (
	"flag"

	"github.com/graftdev/graft/client"
)

// adminFlag registers --admin on fs. Its default is $GRAFT_ADMIN, then the
// per-user default path.
func adminFlag(env *Env, fs *flag.FlagSet) *string {
	def := env.Getenv("GRAFT_ADMIN")
	if def == "" {
		def = client.DefaultSocket(env.Getenv)
	}
	return fs.String("admin", def, "supervisor admin `socket`: $GRAFT_ADMIN, else $XDG_RUNTIME_DIR/graft/admin.sock, else /tmp/graft-UID/admin.sock")
}
