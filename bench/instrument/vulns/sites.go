//go:build ignore

// sites prints, comma-separated, the ids of the check sites that a graft
// manifest lists in packages matching a pattern ("path/..." or a path).
//
//	go run sites.go MANIFEST PATTERN
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

func main() {
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var m struct {
		Sites []struct{ ID, Package string }
	}
	if err := json.Unmarshal(data, &m); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pat := os.Args[2]
	var ids []string
	for _, s := range m.Sites {
		if p, ok := strings.CutSuffix(pat, "/..."); ok && (s.Package == p || strings.HasPrefix(s.Package, p+"/")) || s.Package == pat {
			ids = append(ids, s.ID)
		}
	}
	fmt.Println(strings.Join(ids, ","))
}
