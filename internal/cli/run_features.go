package cli

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/graftdev/graft/internal/checks"
	"github.com/graftdev/graft/internal/funcseal"
	"github.com/graftdev/graft/internal/heal"
	"github.com/graftdev/graft/internal/patch"
	"github.com/graftdev/graft/internal/proxy"
	"github.com/graftdev/graft/internal/shadow"
	"github.com/graftdev/graft/internal/supervisor"
)

// featureFlags are graft run's flags for what it does beyond live update:
// self-healing, shadowing, latent checks, the function-sealing loop and
// in-process patches.
type featureFlags struct {
	alertKey *string
	sealFile *string
	sealTTL  *time.Duration
	manifest *string
}

func addFeatureFlags(fs *flag.FlagSet) *featureFlags {
	return &featureFlags{
		alertKey: fs.String("alert-key", "", "public key `FILE` (PEM) that signed alerts and patches must verify with; none refuses both"),
		sealFile: fs.String("seal-file", "", "`FILE` keeping seal rules across restarts (default: seal.json beside the admin socket)"),
		sealTTL:  fs.Duration("seal-ttl", 24*time.Hour, "how long an automatically installed seal rule lives (negative: forever)"),
		manifest: fs.String("graft-manifest", "", "manifest `FILE` of a program built with graft build: seal the function a panic crashes in, for later generations"),
	}
}

// attachFeatures wires every feature into s, in the order their parts
// depend on each other, and returns what must run beside the supervisor.
func attachFeatures(s *supervisor.Supervisor, f *featureFlags, admin string) (func(context.Context) error, error) {
	var key ed25519.PublicKey
	if *f.alertKey != "" {
		pub, err := readPublicKey(*f.alertKey)
		if err != nil {
			return nil, fmt.Errorf("alert key %s: %w", *f.alertKey, err)
		}
		key = pub
	}
	sealFile := *f.sealFile
	if sealFile == "" && admin != "" {
		sealFile = filepath.Join(filepath.Dir(admin), "seal.json")
	}
	log := s.Logger()

	healing, err := heal.Attach(s, heal.AttachOptions{
		Options:   heal.Options{Logger: log, StorePath: sealFile, TTL: *f.sealTTL},
		AlertKey:  key,
		KeepHooks: true,
	})
	if err != nil {
		return nil, err
	}
	// Shadowing observes only while a run mirrors (copying every answer
	// for it costs the proxy's hot path); each change recomposes its hook
	// with self-healing's, which stay installed.
	setHooks := func(shadowing proxy.Hooks) {
		if p := s.Proxy(); p != nil {
			p.SetHooks(proxy.Compose(healing.Hooks(), shadowing))
		}
	}
	if _, err := shadow.Attach(s, shadow.AttachOptions{SetHooks: setHooks}); err != nil {
		return nil, err
	}
	setHooks(proxy.Hooks{})
	checks.Attach(s, checks.Options{AlertKey: key, Providers: []checks.Provider{healing.CheckProvider()}, Logger: log})
	if *f.manifest != "" {
		if _, err := funcseal.Attach(s, *f.manifest, funcseal.Options{Logger: log}); err != nil {
			return nil, err
		}
	}
	patch.Attach(s, patch.AttachOptions{Pub: key, Logger: log})
	return healing.Run, nil
}
