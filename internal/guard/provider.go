package guard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/checks"
)

// Provider adapts a Set to checks.Provider, so that `graft checks
// list|on|off` (and alerts applied through /v1/checks) show and switch the
// guards beside a program's latent check sites.
type Provider struct{ Guards *Set }

var _ checks.Provider = Provider{}

// List returns the guards as checks of provider "guard".
func (p Provider) List(ctx context.Context) ([]api.Check, error) {
	var out []api.Check
	for _, g := range p.Guards.List() {
		c := api.Check{ID: g.ID, Kind: strings.TrimPrefix(g.ID, "guard."), Provider: "guard", On: g.On}
		if n, err := strconv.ParseInt(g.Params["max"], 10, 64); err == nil {
			c.Limit = n
		}
		out = append(out, c)
	}
	return out, nil
}

// Set switches guard id on or off; ids that are not guards are
// checks.ErrUnknown.
func (p Provider) Set(ctx context.Context, id string, on bool, params map[string]string) error {
	err := p.Guards.Set(id, on, params)
	if errors.Is(err, ErrUnknown) {
		return fmt.Errorf("%w: %w", checks.ErrUnknown, err)
	}
	return err
}
