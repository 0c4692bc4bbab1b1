package patch

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/adminhttp"
)

// Supervisor is what Attach needs of internal/supervisor.
type Supervisor interface {
	Handle(pattern string, h http.Handler)
	Serving() (gen int, rtSocket string)
}

// AttachOptions configures the supervisor's patch routes.
type AttachOptions struct {
	// Pub is the pinned key patches must be signed with (the same key as
	// alerts). Without it every apply is refused.
	Pub     ed25519.PublicKey
	BuildID string // when set, refuse patches for another build
	Logger  *slog.Logger
}

// Attach mounts the patch routes of the admin API on sup; they act on the
// serving generation through its rt socket:
//
//	POST   /v1/patches       api.PatchApply → api.PatchInfo
//	GET    /v1/patches       → api.PatchList
//	DELETE /v1/patches/{id}  → api.PatchInfo
func Attach(sup Supervisor, opts AttachOptions) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{sup: sup, opts: opts, log: log.With("component", "patch")}
	sup.Handle("POST /v1/patches", http.HandlerFunc(h.apply))
	sup.Handle("GET /v1/patches", http.HandlerFunc(h.list))
	sup.Handle("DELETE /v1/patches/{id}", http.HandlerFunc(h.revert))
}

type handler struct {
	sup  Supervisor
	opts AttachOptions
	log  *slog.Logger
}

// ErrNoRT is answered when the serving generation has no rt socket (not
// built with graft build, or not started yet).
var ErrNoRT = errors.New("the serving generation has no rt socket")

func (h *handler) socket() (int, string, error) {
	gen, sock := h.sup.Serving()
	if sock == "" {
		return gen, "", ErrNoRT
	}
	return gen, sock, nil
}

func (h *handler) apply(w http.ResponseWriter, r *http.Request) {
	var req api.PatchApply
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		adminhttp.WriteError(w, http.StatusBadRequest, fmt.Errorf("apply patch: %w", err))
		return
	}
	if len(h.opts.Pub) == 0 {
		adminhttp.WriteError(w, http.StatusForbidden, errors.New("apply patch: no key pinned in the supervisor"))
		return
	}
	gen, sock, err := h.socket()
	if err != nil {
		adminhttp.WriteError(w, http.StatusServiceUnavailable, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(req.WaitMS)*time.Millisecond+30*time.Second)
	defer cancel()
	info, err := Apply(ctx, sock, req.Artifact, ApplyOptions{Pub: h.opts.Pub, BuildID: h.opts.BuildID, Wait: time.Duration(req.WaitMS) * time.Millisecond})
	if err != nil {
		h.log.Warn("patch refused", "gen", gen, "artifact", req.Artifact, "err", err)
		adminhttp.WriteError(w, statusOf(err), err)
		return
	}
	h.log.Info("patch installed", "gen", gen, "id", info.ID, "slots", len(info.Slots), "safe_point_ms", info.SafePointMS)
	adminhttp.WriteJSON(w, http.StatusOK, info)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	_, sock, err := h.socket()
	if err != nil {
		adminhttp.WriteError(w, http.StatusServiceUnavailable, err)
		return
	}
	l, err := List(r.Context(), sock)
	if err != nil {
		adminhttp.WriteError(w, http.StatusBadGateway, err)
		return
	}
	adminhttp.WriteJSON(w, http.StatusOK, l)
}

func (h *handler) revert(w http.ResponseWriter, r *http.Request) {
	gen, sock, err := h.socket()
	if err != nil {
		adminhttp.WriteError(w, http.StatusServiceUnavailable, err)
		return
	}
	info, err := Revert(r.Context(), sock, r.PathValue("id"))
	if err != nil {
		adminhttp.WriteError(w, statusOf(err), err)
		return
	}
	h.log.Info("patch reverted", "gen", gen, "id", info.ID)
	adminhttp.WriteJSON(w, http.StatusOK, info)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, api.ErrPatchUnsigned), errors.Is(err, api.ErrPatchWrongKey), errors.Is(err, api.ErrPatchTampered),
		errors.Is(err, ErrPluginModified):
		return http.StatusForbidden
	case errors.Is(err, ErrWrongBuild), errors.Is(err, ErrRT):
		return http.StatusConflict
	case errors.Is(err, api.ErrPatchMalformed):
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}
