package patch

import (
	"strings"
	"testing"
)

func TestInternalParent(t *testing.T) {
	tests := []struct {
		name, imports, want, err string
	}{
		{"none", `"fmt"; p0 "example.com/m/p"`, "", ""},
		{"one", `p0 "golang.org/x/text/internal/language"; "golang.org/x/text/language"`, "golang.org/x/text", ""},
		{"nested", `"example.com/m/internal/a"; "example.com/m/internal/a/internal/b"`, "example.com/m/internal/a", ""},
		{"apart", `"example.com/m/internal/a"; "example.com/n/internal/b"`, "", "no package may import both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "package main\n\nimport (" + tt.imports + ")\n"
			got, err := internalParent([]byte(src))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("internalParent = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
