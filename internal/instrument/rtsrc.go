package instrument

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/graftdev/graft"
)

// rtModule is the module path generated code imports rt from.
const rtModule = "github.com/graftdev/graft"

// rtGoMod is the go.mod of the module graft extracts rt into: rt alone,
// under graft's module path, so that a user's go.mod copy can replace it.
const rtGoMod = "module " + rtModule + "\n\ngo 1.18\n"

// rtFiles calls f for every non-test source file of rt embedded in graft,
// in lexical order, with its path relative to the module root.
func rtFiles(f func(name string, data []byte) error) error {
	return fs.WalkDir(graft.RTSource, "rt", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := graft.RTSource.ReadFile(p)
		if err != nil {
			return err
		}
		return f(p, b)
	})
}

// rtHash hashes the embedded rt source.
func rtHash() string {
	h := sha256.New()
	h.Write([]byte(rtGoMod))
	rtFiles(func(name string, b []byte) error {
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
		return nil
	})
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
	err = os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(rtGoMod), 0o444)
	if err == nil {
		err = rtFiles(func(name string, b []byte) error {
			dst := filepath.Join(tmp, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o444)
		})
	}
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
