package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/graftdev/graft/api"
)

const alertHelp = `
Make an ed25519 key pair, sign an alert, verify one. An alert is a signed
advisory that switches latent checks on (request-level guards such as
guard.body_size, or check sites of a graft build manifest); a supervisor
started with --alert-key PUB accepts only alerts signed by that key and
not expired. Format: docs/alert.md.

  graft alert keygen [--out PREFIX]            writes PREFIX.key (0600) and PREFIX.pub
  graft alert sign --key FILE --id ID --expires DUR|TIME --check ID [--param ID:K=V]... [--reason TEXT] [-o FILE]
  graft alert verify --pub FILE [--at TIME] [--json] FILE
`

func cmdAlert(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlags(env, "alert", "alert keygen|sign|verify ...", alertHelp)
		if err := parse(env, fs, args); err != nil {
			return err
		}
		fmt.Fprintln(env.Stderr, "graft alert: want a subcommand: keygen, sign or verify")
		fs.Usage()
		return ErrUsage
	}
	switch args[0] {
	case "keygen":
		return alertKeygen(env, args[1:])
	case "sign":
		return alertSign(env, args[1:])
	case "verify":
		return alertVerify(env, args[1:])
	}
	fmt.Fprintf(env.Stderr, "graft alert: unknown subcommand %q (want keygen, sign or verify)\n", args[0])
	return ErrUsage
}

func alertKeygen(env *Env, args []string) error {
	fs := newFlags(env, "alert keygen", "alert keygen [--out PREFIX]", alertHelp)
	out := fs.String("out", "graft-alert", "write the key pair to `PREFIX`.key and PREFIX.pub")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("alert keygen: %w", err)
	}
	privPEM, err := api.MarshalPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("alert keygen: %w", err)
	}
	pubPEM, err := api.MarshalPublicKey(pub)
	if err != nil {
		return fmt.Errorf("alert keygen: %w", err)
	}
	// O_EXCL: never overwrite a key someone may already have pinned.
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{*out + ".key", privPEM, 0o600}, {*out + ".pub", pubPEM, 0o644}} {
		fd, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return fmt.Errorf("alert keygen: %w", err)
		}
		if _, err := fd.Write(f.data); err != nil {
			fd.Close()
			return fmt.Errorf("alert keygen: %w", err)
		}
		if err := fd.Close(); err != nil {
			return fmt.Errorf("alert keygen: %w", err)
		}
	}
	fmt.Fprintf(env.Stdout, "key %s: private %s.key, public %s.pub\n", api.KeyID(pub), *out, *out)
	return nil
}

func alertSign(env *Env, args []string) error {
	fs := newFlags(env, "alert sign", "alert sign --key FILE --id ID --expires DUR|TIME --check ID [--param ID:K=V]... [--reason TEXT] [-o FILE]", alertHelp)
	keyFile := fs.String("key", "", "private key `FILE` (from alert keygen)")
	id := fs.String("id", "", "the advisory's id, e.g. GRAFT-2026-0001")
	expires := fs.String("expires", "168h", "expiry: a duration from now or an RFC 3339 time")
	reason := fs.String("reason", "", "what the alert is about")
	out := fs.String("o", "", "write the alert to `FILE` (default stdout)")
	var checks, params multiFlag
	fs.Var(&checks, "check", "check `ID` to switch on (repeatable)")
	fs.Var(&params, "param", "parameter of a check, `ID:KEY=VALUE` (repeatable)")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	if *keyFile == "" || *id == "" || len(checks) == 0 || fs.NArg() > 0 {
		fmt.Fprintln(env.Stderr, "graft alert sign: want --key, --id and at least one --check")
		return ErrUsage
	}
	data, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("alert sign: %w", err)
	}
	priv, err := api.ParsePrivateKey(data)
	if err != nil {
		return fmt.Errorf("alert sign: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	exp, err := parseWhen(*expires, now)
	if err != nil {
		return fmt.Errorf("alert sign: --expires: %w", err)
	}
	body := api.AlertBody{ID: *id, Issued: now, Expires: exp, Reason: *reason}
	idx := map[string]int{}
	for _, c := range checks {
		idx[c] = len(body.Checks)
		body.Checks = append(body.Checks, api.AlertCheck{ID: c})
	}
	for _, p := range params {
		cid, kv, ok1 := strings.Cut(p, ":")
		k, v, ok2 := strings.Cut(kv, "=")
		i, known := idx[cid]
		if !ok1 || !ok2 || k == "" {
			return fmt.Errorf("alert sign: --param %q: want ID:KEY=VALUE", p)
		}
		if !known {
			return fmt.Errorf("alert sign: --param %q: no --check %s", p, cid)
		}
		if body.Checks[i].Params == nil {
			body.Checks[i].Params = map[string]string{}
		}
		body.Checks[i].Params[k] = v
	}
	a, err := api.SignAlert(priv, body)
	if err != nil {
		return fmt.Errorf("alert sign: %w", err)
	}
	enc, _ := json.MarshalIndent(a, "", "  ")
	enc = append(enc, '\n')
	if *out == "" {
		_, err = env.Stdout.Write(enc)
		return err
	}
	if err := os.WriteFile(*out, enc, 0o644); err != nil {
		return fmt.Errorf("alert sign: %w", err)
	}
	fmt.Fprintf(env.Stderr, "signed alert %s with key %s, expires %s: %s\n", *id, a.KeyID, exp.Format(time.RFC3339), *out)
	return nil
}

func parseWhen(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New("want a duration (168h) or an RFC 3339 time")
	}
	return t, nil
}

// alertVerified is the --json output of alert verify.
type alertVerified struct {
	Version int            `json:"version"`
	OK      bool           `json:"ok"`
	Error   string         `json:"error,omitempty"`
	Alert   *api.AlertBody `json:"alert,omitempty"`
}

func alertVerify(env *Env, args []string) error {
	fs := newFlags(env, "alert verify", "alert verify --pub FILE [--at TIME] [--json] FILE", alertHelp)
	pubFile := fs.String("pub", "", "pinned public key `FILE`")
	at := fs.String("at", "", "verify as of this RFC 3339 time (default now)")
	asJSON := fs.Bool("json", false, "print the verdict and the alert as JSON")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	if *pubFile == "" || fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "graft alert verify: want --pub FILE and one alert FILE")
		return ErrUsage
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("alert verify: --at: %w", err)
		}
		now = t
	}
	data, err := os.ReadFile(*pubFile)
	if err != nil {
		return fmt.Errorf("alert verify: %w", err)
	}
	pub, err := api.ParsePublicKey(data)
	if err != nil {
		return fmt.Errorf("alert verify: %w", err)
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("alert verify: %w", err)
	}
	a, err := api.ParseAlert(raw)
	var body *api.AlertBody
	if err == nil {
		body, err = a.Verify(pub, now)
	}
	if *asJSON {
		v := alertVerified{Version: api.Version, OK: err == nil, Alert: body}
		if err != nil {
			v.Error = err.Error()
		}
		if e := printJSON(env.Stdout, v); e != nil {
			return e
		}
	}
	if err != nil {
		return fmt.Errorf("alert verify %s: refused: %w", fs.Arg(0), err)
	}
	if !*asJSON {
		fmt.Fprintf(env.Stdout, "ok: alert %s signed by key %s, expires %s, switches on %s\n",
			body.ID, body.KeyID, body.Expires.UTC().Format(time.RFC3339), strings.Join(body.CheckIDs(), ", "))
	}
	return nil
}
