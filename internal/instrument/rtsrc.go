package instrument

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// rtSource is a copy of rt's source (kept current by
// `go generate ./internal/instrument`, checked by TestRTSourceCurrent),
// embedded so graft can link rt into any module from any directory.
//
//go:generate go test -run TestRTSourceCurrent -update-rt .
//go:embed all:_rtsrc
var rtSource embed.FS

// rtModule is the module path generated code imports rt from.
const rtModule = "github.com/graftdev/graft"

// rtHash hashes the embedded rt source.
func rtHash() string {
	h := sha256.New()
	var names []string
	fs.WalkDir(rtSource, "_rtsrc", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, n := range names {
		b, _ := rtSource.ReadFile(n)
		fmt.Fprintf(h, "%s %d\n", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// extractRT writes the embedded rt module under cache (once per content)
// and returns its directory.
func extractRT(cache, hash string) (string, error) {
	dir := filepath.Join(cache, "rt", hash)
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(cache), "rt-tmp-")
	if err != nil {
		return "", fmt.Errorf("extract rt: %w", err)
	}
	defer os.RemoveAll(tmp)
	err = fs.WalkDir(rtSource, "_rtsrc", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("_rtsrc", p)
		if rel == "go.mod.txt" {
			rel = "go.mod"
		}
		dst := filepath.Join(tmp, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := rtSource.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o444)
	})
	if err != nil {
		return "", fmt.Errorf("extract rt: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("extract rt: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "go.mod")); serr == nil {
			return dir, nil // another graft extracted it first
		}
		return "", fmt.Errorf("extract rt: %w", err)
	}
	return dir, nil
}
