package client

import (
	"context"
	"net/http"

	"github.com/graftdev/graft/api"
)

// Status returns the supervisor's generations and recent events.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var s api.Status
	if err := c.Do(ctx, http.MethodGet, "/v1/status", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Upgrade starts the next generation and returns when it serves or has been
// rolled back (then the error says why).
func (c *Client) Upgrade(ctx context.Context, req api.UpgradeRequest) (*api.UpgradeResult, error) {
	var r api.UpgradeResult
	if err := c.Do(ctx, http.MethodPost, "/v1/upgrade", req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Rollback returns to the parked generation.
func (c *Client) Rollback(ctx context.Context) (*api.UpgradeResult, error) {
	var r api.UpgradeResult
	if err := c.Do(ctx, http.MethodPost, "/v1/rollback", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
