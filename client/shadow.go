package client

import (
	"context"
	"net/http"

	"github.com/graftdev/graft/api"
)

// StartShadow starts a shadow run: the supervisor starts the candidate and a
// secondary and mirrors live traffic to both. It returns at once, with the
// run's first report (state "starting").
func (c *Client) StartShadow(ctx context.Context, req api.ShadowRequest) (*api.Report, error) {
	var r api.Report
	if err := c.Do(ctx, http.MethodPost, "/v1/shadow", req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// StopShadow ends the current shadow run and returns its final report once
// its lanes are stopped (and, with promote, the upgrade is done).
func (c *Client) StopShadow(ctx context.Context) (*api.Report, error) {
	var r api.Report
	if err := c.Do(ctx, http.MethodPost, "/v1/shadow/stop", struct{}{}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Report returns the current or last shadow run's report.
func (c *Client) Report(ctx context.Context) (*api.Report, error) {
	var r api.Report
	if err := c.Do(ctx, http.MethodGet, "/v1/report", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ReportHTML returns the report as a self-contained HTML page.
func (c *Client) ReportHTML(ctx context.Context) ([]byte, error) {
	return c.Raw(ctx, "/v1/report.html")
}
