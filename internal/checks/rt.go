package checks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/graftdev/graft/api"
)

// RT is the path of a program's rt admin socket.
type RT string

// Do sends one request and reads its answer. An answer carrying an error
// with nothing changed is returned as an error.
func (r RT) Do(ctx context.Context, req api.RTRequest) (*api.RTResponse, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", string(r))
	if err != nil {
		return nil, fmt.Errorf("rt %s: %w", r, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, fmt.Errorf("rt %s: %w", r, err)
	}
	var resp api.RTResponse
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		return nil, fmt.Errorf("rt %s: read answer: %w", r, err)
	}
	if resp.Error != "" && len(resp.Changed) == 0 && resp.List == nil && len(resp.Unknown) == 0 {
		return &resp, fmt.Errorf("rt %s: %w", r, errors.New(resp.Error))
	}
	return &resp, nil
}

// Guards adapts a request-guard set (internal/guard) to Provider.
func Guards(g interface {
	List() []api.Guard
	Set(id string, on bool, params map[string]string) error
}) Provider {
	return guardProvider{g}
}

type guardProvider struct {
	g interface {
		List() []api.Guard
		Set(id string, on bool, params map[string]string) error
	}
}

func (p guardProvider) List(ctx context.Context) ([]api.Check, error) {
	var out []api.Check
	for _, g := range p.g.List() {
		out = append(out, api.Check{ID: g.ID, Kind: "guard", Provider: "guard", On: g.On})
	}
	return out, nil
}

func (p guardProvider) Set(ctx context.Context, id string, on bool, params map[string]string) error {
	known := false
	for _, g := range p.g.List() {
		if g.ID == id {
			known = true
			break
		}
	}
	if !known {
		return ErrUnknown
	}
	return p.g.Set(id, on, params)
}
