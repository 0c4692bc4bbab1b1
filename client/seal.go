package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/graftdev/graft/api"
)

// SealList returns the installed seal rules.
func (c *Client) SealList(ctx context.Context) (*api.SealList, error) {
	var l api.SealList
	if err := c.Do(ctx, http.MethodGet, "/v1/seal", nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// SealAdd installs a seal rule by hand.
func (c *Client) SealAdd(ctx context.Context, req api.SealAddRequest) (*api.SealAddResult, error) {
	var r api.SealAddResult
	if err := c.Do(ctx, http.MethodPost, "/v1/seal", req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// SealRemove deletes seal rule id.
func (c *Client) SealRemove(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/seal/"+url.PathEscape(id), nil, nil)
}

// Guards lists the request-level latent guards.
func (c *Client) Guards(ctx context.Context) (*api.GuardList, error) {
	var l api.GuardList
	if err := c.Do(ctx, http.MethodGet, "/v1/guards", nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// SetGuards switches guards on or off, or applies a signed alert (verified
// by the supervisor against its pinned key), and returns the guards after.
func (c *Client) SetGuards(ctx context.Context, req api.GuardRequest) (*api.GuardList, error) {
	var l api.GuardList
	if err := c.Do(ctx, http.MethodPost, "/v1/guards", req, &l); err != nil {
		return nil, err
	}
	return &l, nil
}
