// Command vulns runs graft's patch admissibility on real Go vulnerability
// fixes (vulnerable → fixed version, fetched through the module proxy) and
// prints the table of docs/vulns-patch.md.
//
//	go run ./bench/patch/vulns [-only ID] > table.md
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/patch"
)

type fix struct {
	id, module, from, to string
	pkgs                 []string // packages the advisory names; "" = the module root
	symbols              string   // vulnerable symbols, from the advisory
}

// fixes are entries of the Go vulnerability database whose vulnerable and
// fixed versions the module proxy serves.
var fixes = []fix{
	{"GO-2021-0059", "github.com/tidwall/gjson", "v1.6.3", "v1.6.4", nil, "squash"},
	{"GO-2022-0957", "github.com/tidwall/gjson", "v1.6.4", "v1.6.5", nil, "parseObject, queryMatches"},
	{"GO-2021-0054", "github.com/tidwall/gjson", "v1.6.5", "v1.6.6", nil, "unwrap"},
	{"GO-2021-0265", "github.com/tidwall/gjson", "v1.9.2", "v1.9.3", nil, "Get (path match)"},
	{"GO-2021-0089", "github.com/buger/jsonparser", "v0.0.0-20191204142016-1a29609e0929", "v0.0.0-20200321185410-91ac96899e49", nil, "findKeyStart"},
	{"GO-2021-0057", "github.com/buger/jsonparser", "v1.1.0", "v1.1.1", nil, "searchKeys"},
	{"GO-2020-0015", "golang.org/x/text", "v0.3.2", "v0.3.3", []string{"encoding/unicode", "transform"}, "utf16Decoder.Transform"},
	{"GO-2022-1059", "golang.org/x/text", "v0.3.7", "v0.3.8", []string{"language", "internal/language"}, "ParseAcceptLanguage"},
	{"GO-2021-0061", "gopkg.in/yaml.v2", "v2.2.2", "v2.2.3", nil, "decoder.unmarshal (alias chasing)"},
	{"GO-2022-0956", "gopkg.in/yaml.v2", "v2.2.3", "v2.2.4", nil, "yaml_parser_increase_flow_level, yaml_parser_roll_indent"},
	{"GO-2020-0036", "gopkg.in/yaml.v2", "v2.2.7", "v2.2.8", nil, "yaml_parser_fetch_more_tokens and friends"},
	{"GO-2022-0603", "gopkg.in/yaml.v3", "v3.0.0-20210107192922-496545a6307b", "v3.0.0-20220521103104-8f96da9f5d5e", nil, "Unmarshal"},
	{"GO-2021-0091", "github.com/ulikunitz/xz", "v0.5.7", "v0.5.8", []string{"", "lzma"}, "readUvarint"},
}

func main() {
	only := flag.String("only", "", "run only this advisory id")
	verbose := flag.Bool("v", false, "print every change of every fix")
	flag.Parse()
	ctx := context.Background()
	work, err := os.MkdirTemp("", "graft-vulns-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(work)
	fmt.Println("| advisory | module | vulnerable → fixed | changed funcs | admitted | refused because | make time |")
	fmt.Println("|---|---|---|---|---|---|---|")
	var admitted, total int
	for _, f := range fixes {
		if *only != "" && f.id != *only {
			continue
		}
		total++
		start := time.Now()
		r, err := run(ctx, work, f)
		el := time.Since(start)
		if err != nil {
			fmt.Printf("| %s | %s | %s → %s | – | error | %s | |\n", f.id, f.module, f.from, f.to, oneLine(err.Error()))
			continue
		}
		var funcs int
		var refused []string
		for _, c := range r.Changes {
			if c.Kind == api.PatchFunc && c.Change == api.Changed {
				funcs++
			}
			if !c.Admitted {
				refused = append(refused, fmt.Sprintf("`%s`: %s", strings.TrimPrefix(c.ID, f.module+"/"), c.Reason))
			}
			if *verbose {
				fmt.Fprintf(os.Stderr, "%s %v %s %s %s: %s\n", f.id, c.Admitted, c.Kind, c.Change, c.ID, c.Reason)
			}
		}
		verdict := "no"
		if r.Admitted {
			verdict = "**yes**"
			admitted++
		}
		why := strings.Join(refused, "; ")
		if len(refused) > 3 {
			why = strings.Join(refused[:3], "; ") + fmt.Sprintf("; and %d more", len(refused)-3)
		}
		fmt.Printf("| %s | %s | %s → %s | %d | %s | %s | %.1fs |\n", f.id, f.module, short(f.from), short(f.to), funcs, verdict, oneLine(why), el.Seconds())
	}
	fmt.Printf("\nAdmitted: %d of %d.\n", admitted, total)
}

func run(ctx context.Context, work string, f fix) (*api.PatchReport, error) {
	var trees [2]*patch.Tree
	for i, v := range []string{f.from, f.to} {
		dir, err := patch.FetchModule(ctx, f.module+"@"+v, work)
		if err != nil {
			return nil, err
		}
		opts := patch.LoadOptions{ModMod: true}
		for _, p := range f.pkgs {
			opts.Patterns = append(opts.Patterns, "./"+p)
		}
		t, err := patch.LoadTree(ctx, dir, opts)
		if err != nil {
			return nil, err
		}
		trees[i] = t
	}
	return patch.Diff(trees[0], trees[1], patch.Options{}), nil
}

func short(v string) string {
	if len(v) > 20 && strings.Count(v, "-") >= 2 {
		return v[strings.LastIndex(v, "-")+1:][:7]
	}
	return v
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.Join(strings.Fields(s), " ")
}
