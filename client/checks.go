package client

import (
	"context"
	"net/http"

	"github.com/graftdev/graft/api"
)

// Checks lists the latent check sites, patch points and guards
// (GET /v1/checks).
func (c *Client) Checks(ctx context.Context) (*api.CheckList, error) {
	var out api.CheckList
	if err := c.Do(ctx, http.MethodGet, "/v1/checks", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetChecks switches checks on or off, by id or by a signed alert
// (POST /v1/checks).
func (c *Client) SetChecks(ctx context.Context, req api.ChecksSet) (*api.ChecksResult, error) {
	req.Version = api.Version
	var out api.ChecksResult
	if err := c.Do(ctx, http.MethodPost, "/v1/checks", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
