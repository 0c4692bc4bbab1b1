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
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/instrument"
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
	// The dependency halves of GO-2022-0957 and GO-2021-0265: the fix
	// lives partly in tidwall/match, bumped by gjson's go.mod.
	{"GO-2022-0957 (match)", "github.com/tidwall/match", "v1.0.1", "v1.0.3", nil, "Match"},
	{"GO-2021-0265 (match)", "github.com/tidwall/match", "v1.1.0", "v1.1.1", nil, "Match"},
	{"GO-2021-0089", "github.com/buger/jsonparser", "v0.0.0-20191204142016-1a29609e0929", "v1.0.0", nil, "findKeyStart"},
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
	fmt.Println("| advisory | module | vulnerable → fixed | changed funcs | admitted | plugin built | refused because / not built because | make time |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	var admitted, built, total int
	for _, f := range fixes {
		if *only != "" && f.id != *only {
			continue
		}
		total++
		start := time.Now()
		res, err := run(ctx, work, f)
		el := time.Since(start)
		if err != nil {
			fmt.Printf("| %s | %s | %s → %s | – | error | – | %s | |\n", f.id, f.module, short(f.from), short(f.to), oneLine(err.Error()))
			continue
		}
		r := res.report
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
		plugin := "–"
		switch {
		case res.built:
			plugin = "**yes**"
			built++
		case res.genErr != nil:
			plugin = "no"
			why = res.genErr.Error()
		case res.buildErr != nil:
			plugin = "no"
			why = res.buildErr.Error()
		}
		if len(why) > 400 {
			why = why[:400] + "…"
		}
		fmt.Printf("| %s | %s | %s → %s | %d | %s | %s | %s | %.1fs (%.1fs total) |\n", f.id, f.module, short(f.from), short(f.to), funcs, verdict, plugin, oneLine(why), res.makeDur.Seconds(), el.Seconds())
	}
	fmt.Printf("\nAdmitted: %d of %d. Plugin built against the real instrumented build: %d of %d.\n", admitted, total, built, total)
}

// result is one row of the table.
type result struct {
	report   *api.PatchReport
	genErr   error // generator could not express the admitted patch
	built    bool  // plugin built against the target build
	buildErr error
	makeDur  time.Duration
}

// run fetches both versions, builds a harness program that links the
// vulnerable packages with graft build (the module instrumented), and runs
// the patch pipeline against that build: diff with the build's real patch
// points, generate, build the plugin.
func run(ctx context.Context, work string, f fix) (*result, error) {
	var dirs [2]string
	var trees [2]*patch.Tree
	for i, v := range []string{f.from, f.to} {
		dir, err := patch.FetchModule(ctx, f.module+"@"+v, work)
		if err != nil {
			return nil, err
		}
		dirs[i] = dir
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
	harness, err := writeHarness(ctx, work, f, dirs[0], trees[0])
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	inst := []string{f.module + "/..."}
	b, err := instrument.Prepare(ctx, instrument.Options{Dir: harness, Patterns: []string{"."}, Instrument: inst})
	if err != nil {
		return nil, fmt.Errorf("graft build of the harness: %w", err)
	}
	res := &result{}
	start := time.Now()
	res.report = patch.Diff(trees[0], trees[1], patch.Options{HasPoint: patch.HasPointIn(&b.Manifest)})
	if !res.report.Admitted {
		res.makeDur = time.Since(start)
		return res, nil
	}
	p, err := patch.Generate(trees[0], trees[1], res.report)
	if err != nil {
		res.genErr = err
		res.makeDur = time.Since(start)
		return res, nil
	}
	ib := &patch.InstrumentBuilder{Target: &b.Manifest, Patterns: []string{"."}, Instrument: inst}
	if _, err := ib.BuildPlugin(ctx, "graftpatch_vuln", p.Source, filepath.Join(work, "p.so")); err != nil {
		res.buildErr = err
	} else {
		res.built = true
	}
	res.makeDur = time.Since(start)
	return res, nil
}

// writeHarness makes a main module that requires the vulnerable version
// (replaced by the fetched copy, which is also the diff's old tree) and
// imports every package of the tree.
func writeHarness(ctx context.Context, work string, f fix, old string, t *patch.Tree) (string, error) {
	dir := filepath.Join(work, "harness-"+strings.NewReplacer(" ", "_", "(", "", ")", "").Replace(f.id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	mod := fmt.Sprintf("module example.com/harness\n\ngo 1.22\n\nrequire %s %s\n\nreplace %s => %s\n", f.module, f.from, f.module, old)
	var imports strings.Builder
	for path := range t.Pkgs {
		fmt.Fprintf(&imports, "\t_ %q\n", path)
	}
	src := "package main\n\nimport (\n" + imports.String() + ")\n\nfunc main() {}\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "mod", "tidy")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod tidy: %v: %s", err, out)
	}
	return dir, nil
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
