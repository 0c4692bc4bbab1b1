package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/graftdev/graft/api"
)

// PatchApply verifies and installs a patch artifact in the serving
// generation (the supervisor checks the signature against its pinned key).
func (c *Client) PatchApply(ctx context.Context, req api.PatchApply) (*api.PatchInfo, error) {
	var r api.PatchInfo
	if err := c.Do(ctx, http.MethodPost, "/v1/patches", req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Patches lists the patches installed in the serving generation.
func (c *Client) Patches(ctx context.Context) (*api.PatchList, error) {
	var r api.PatchList
	if err := c.Do(ctx, http.MethodGet, "/v1/patches", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// PatchRevert restores the bodies a patch replaced.
func (c *Client) PatchRevert(ctx context.Context, id string) (*api.PatchInfo, error) {
	var r api.PatchInfo
	if err := c.Do(ctx, http.MethodDelete, "/v1/patches/"+url.PathEscape(id), nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
