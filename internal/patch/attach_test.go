package patch

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/client"
	"github.com/graftdev/graft/rt"
)

// fakeSupervisor serves mounted routes on a real unix socket.
type fakeSupervisor struct {
	mux  *http.ServeMux
	sock string
}

func (f *fakeSupervisor) Handle(p string, h http.Handler) { f.mux.Handle(p, h) }
func (f *fakeSupervisor) Serving() (int, string)          { return 1, f.sock }

// applied records what the program's rt was asked to load.
var (
	appliedMu sync.Mutex
	applied   []rtApplyArg
	opOnce    sync.Once
)

func TestAttachApply(t *testing.T) {
	// The program side: the real rt admin socket with a patch.apply op that
	// records its argument instead of loading (plugin loading is rtplugin's).
	opOnce.Do(func() {
		err := rt.HandleOp(OpApply, func(arg json.RawMessage) (any, error) {
			var a rtApplyArg
			if err := json.Unmarshal(arg, &a); err != nil {
				return nil, err
			}
			appliedMu.Lock()
			applied = append(applied, a)
			appliedMu.Unlock()
			return map[string]any{"id": a.ID, "funcs": []string{"example.com/fx.allow"}, "safe_point_ms": 0.5}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	// applied outlives a run (the op is registered once per process): a
	// run under -count=N starts from an empty record.
	appliedMu.Lock()
	applied = nil
	appliedMu.Unlock()
	dir := t.TempDir()
	rtSock := filepath.Join(dir, "rt.sock")
	srv, err := rt.Serve(rtSock)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	pub, priv, _ := ed25519.GenerateKey(nil)
	old, new := loadPair(t, "state")
	so := filepath.Join(dir, "fix.so")
	target := &api.Manifest{Build: api.ManifestBuild{ID: "build-A"}, Points: []api.Point{{ID: "example.com/fx.allow"}}}
	a, err := Make(t.Context(), MakeOptions{From: old.Dir, To: new.Dir, Target: target, Builder: fakeBuilder{"build-A"}, Key: priv, Out: so})
	if err != nil {
		t.Fatal(err)
	}
	sup := &fakeSupervisor{mux: http.NewServeMux(), sock: rtSock}
	Attach(sup, AttachOptions{Pub: pub, BuildID: "build-A"})
	adminSock := filepath.Join(dir, "admin.sock")
	ln, err := net.Listen("unix", adminSock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: sup.mux}
	go hs.Serve(ln)
	defer hs.Close()
	c := client.New(adminSock)

	// Tampered plugin: refused by the supervisor before rt hears of it.
	bad := filepath.Join(dir, "bad.so")
	copyArtifact(t, so, bad)
	os.WriteFile(bad, []byte("not the signed plugin"), 0o644)
	_, err = c.PatchApply(t.Context(), api.PatchApply{Version: 1, Artifact: bad})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("tampered apply: err = %v, want 403", err)
	}
	appliedMu.Lock()
	n := len(applied)
	appliedMu.Unlock()
	if n != 0 {
		t.Fatalf("rt was asked to load a tampered plugin: %+v", applied)
	}

	info, err := c.PatchApply(t.Context(), api.PatchApply{Version: 1, Artifact: so, WaitMS: 250})
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != a.Manifest.ID || len(info.Slots) != 1 || info.SafePointMS != 0.5 {
		t.Errorf("info = %+v", info)
	}
	appliedMu.Lock()
	got := applied[len(applied)-1]
	appliedMu.Unlock()
	if got.Path != so || got.ID != a.Manifest.ID || got.WaitMS != 250 {
		t.Errorf("rt got %+v", got)
	}

	l, err := c.Patches(t.Context())
	if err != nil || l.Version != api.Version {
		t.Fatalf("list: %+v, %v", l, err)
	}
	// Reverting a patch rt does not have is rt's refusal, passed on.
	if _, err := c.PatchRevert(t.Context(), "nope"); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Errorf("revert unknown: err = %v, want 409", err)
	}

	// A supervisor pinned to another build refuses.
	sup2 := &fakeSupervisor{mux: http.NewServeMux(), sock: rtSock}
	Attach(sup2, AttachOptions{Pub: pub, BuildID: "build-B"})
	rec := httptest.NewRecorder()
	body, _ := json.Marshal(api.PatchApply{Version: 1, Artifact: so})
	sup2.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/patches", bytes.NewReader(body)))
	if rec.Code != http.StatusConflict {
		t.Errorf("other build: status %d, want 409: %s", rec.Code, rec.Body)
	}
}
