package patch

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/graftdev/graft/api"
)

// OpApply is the rt admin op that loads and installs a plugin
// (registered by rt/rtplugin in programs built with graft build --patchable).
const OpApply = "patch.apply"

// rtApplyArg is the argument of OpApply (see docs/rt.md).
type rtApplyArg struct {
	Path    string `json:"path"`
	ID      string `json:"id"`
	WaitMS  int64  `json:"wait_ms,omitempty"`
	PerCall bool   `json:"per_call,omitempty"`
}

// ErrRT wraps an error answered by the program's rt.
var ErrRT = errors.New("rt refused")

// rtDo sends one request line to an rt admin socket and reads the answer.
func rtDo(ctx context.Context, sock string, req api.RTRequest) (*api.RTResponse, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("rt %s: %w", req.Op, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("rt %s: %w", req.Op, err)
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("rt %s: %w", req.Op, err)
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("rt %s: %w", req.Op, err)
		}
		return nil, fmt.Errorf("rt %s: connection closed without an answer", req.Op)
	}
	var resp api.RTResponse
	if err := json.Unmarshal(sc.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("rt %s: decode answer: %w", req.Op, err)
	}
	if resp.Error != "" {
		return &resp, fmt.Errorf("rt %s: %w: %s", req.Op, ErrRT, resp.Error)
	}
	return &resp, nil
}

// ApplyOptions are the checks and bounds of one apply.
type ApplyOptions struct {
	Pub ed25519.PublicKey // pinned key; required
	// BuildID is the build the patch must fit; empty: the build id the
	// running program reports (rt list), when it reports one.
	BuildID string
	Wait    time.Duration // bound on the wait for a safe point (0: rt's default)
}

// Apply verifies the artifact so (signature, plugin hash, target build) and
// asks the program behind the rt socket to load and install it. Nothing is
// sent to the program unless every check passes.
func Apply(ctx context.Context, sock, so string, opts ApplyOptions) (*api.PatchInfo, error) {
	if opts.BuildID == "" {
		if resp, err := rtDo(ctx, sock, api.RTRequest{Op: "list"}); err == nil {
			opts.BuildID = resp.BuildID
		}
	}
	m, _, err := Verify(so, opts.Pub, opts.BuildID)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(so)
	if err != nil {
		return nil, fmt.Errorf("apply patch: %w", err)
	}
	arg, err := json.Marshal(rtApplyArg{Path: abs, ID: m.ID, WaitMS: opts.Wait.Milliseconds(), PerCall: m.PerCall})
	if err != nil {
		return nil, fmt.Errorf("apply patch: %w", err)
	}
	start := time.Now()
	resp, err := rtDo(ctx, sock, api.RTRequest{Op: OpApply, Arg: arg})
	if err != nil {
		return nil, fmt.Errorf("apply patch %s: %w", m.ID, err)
	}
	info := &api.PatchInfo{Version: api.Version, ID: m.ID, Slots: m.Slots, Installed: time.Now().UTC()}
	// rtplugin answers with what it installed; take what it says when it
	// says it, else what was asked.
	var res struct {
		ID          string   `json:"id"`
		Funcs       []string `json:"funcs"`
		SafePointMS float64  `json:"safe_point_ms"`
	}
	if len(resp.Result) > 0 && json.Unmarshal(resp.Result, &res) == nil {
		if res.ID != "" {
			info.ID = res.ID
		}
		if len(res.Funcs) > 0 {
			info.Slots = res.Funcs
		}
		info.SafePointMS = res.SafePointMS
	}
	if info.SafePointMS == 0 {
		info.SafePointMS = float64(time.Since(start).Microseconds()) / 1000
	}
	return info, nil
}

// List returns the patches installed in the program behind sock.
func List(ctx context.Context, sock string) (*api.PatchList, error) {
	resp, err := rtDo(ctx, sock, api.RTRequest{Op: "list"})
	if err != nil {
		return nil, fmt.Errorf("list patches: %w", err)
	}
	l := &api.PatchList{Version: api.Version, Patches: []api.PatchInfo{}}
	for _, p := range resp.Patches {
		l.Patches = append(l.Patches, api.PatchInfo{Version: api.Version, ID: p.ID, Slots: p.Funcs})
	}
	return l, nil
}

// Revert restores the bodies patch id replaced (rt refuses when a later
// patch replaced one of them since: revert in reverse order).
func Revert(ctx context.Context, sock, id string) (*api.PatchInfo, error) {
	if _, err := rtDo(ctx, sock, api.RTRequest{Op: "revert", IDs: []string{id}}); err != nil {
		return nil, fmt.Errorf("revert patch %s: %w", id, err)
	}
	return &api.PatchInfo{Version: api.Version, ID: id, Reverted: true}, nil
}
