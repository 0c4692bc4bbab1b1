// Command vulns runs graft's patch admissibility on real Go vulnerability
// fixes (vulnerable → fixed version, fetched through the module proxy) and
// prints the table of docs/vulns-patch.md.
//
//	go run ./bench/patch/vulns [-only ID,ID] [-goarch 386] > table.md
//
// A row whose bug exists only on 32-bit platforms names its GOARCH: its
// trees are loaded, its harness built and its plugin made for that
// GOARCH (with cgo, which plugins need: on linux/amd64 that takes
// `apt-get install -y gcc-multilib` for 386), and the 32-bit harness runs
// on the amd64 kernel.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/instrument"
	"github.com/graftdev/graft/internal/patch"
)

type fix struct {
	id, module, from, to string
	pkgs                 []string // packages the advisory names; "" = the module root
	symbols              string   // vulnerable symbols, from the advisory
	goarch               string   // the GOARCH the bug needs ("" = graft's own)
}

// repros are reproducers by advisory id: the body of a func() string that
// triggers the vulnerability (inputs from the fix's own regression test),
// and the packages it names.
var repros = map[string]struct {
	imports []string
	repro   string
}{
	"GO-2021-0059": {[]string{"github.com/tidwall/gjson"}, "x := `0.#[[{}]].@valid:\"000`\n\treturn gjson.Get(x, x).Raw"},
	"GO-2021-0054": {[]string{"github.com/tidwall/gjson"}, "x := `[#.@pretty.@join:{\"\"[]\"\"preserve\"3,\"][{]]]`\n\treturn gjson.Get(x, x).Raw"},
	// The fix's own regression test (gjson_test.go of v1.9.3, issue #237).
	"GO-2021-0265": {[]string{"github.com/tidwall/gjson"}, "j := `[\"*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,,,,,,\"]`\n\tp := `#[%\"*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,*,,,,,,\"\"*,*\"]`\n\treturn gjson.Get(j, p).Raw"},
	// The fix's own TestIssue195 (gjson v1.6.5); the work is in
	// tidwall/match, which v1.6.5 bumps.
	"GO-2022-0957": {[]string{"github.com/tidwall/gjson"}, "x := `\\************************************` +\n\t\t`**********{**\",**,,**,**,**,**,\"\",**,**,**,**,**,**,**,**,**,**]`\n\treturn gjson.Get(x, x).Raw"},
	"GO-2021-0089": {[]string{"github.com/buger/jsonparser"}, "return string(jsonparser.Delete([]byte(`^_ï¿½^C^A^@[`), \"\"))"},
	"GO-2021-0057": {[]string{"github.com/buger/jsonparser"}, "v, _, _, err := jsonparser.Get([]byte(`[\"\"]`), \"[\")\n\treturn fmt.Sprint(string(v), err)"},
	"GO-2020-0015": {[]string{"golang.org/x/text/encoding/unicode", "golang.org/x/text/transform"}, "s, _, err := transform.String(unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder(), \"\\x00\")\n\treturn fmt.Sprint(s, err)"},
	"GO-2022-0603": {[]string{"gopkg.in/yaml.v3"}, "var v any\n\terr := yaml.Unmarshal([]byte(\"0: [:!00 \\xef\"), &v)\n\treturn fmt.Sprint(v, err)"},
	"GO-2022-0956": {[]string{"gopkg.in/yaml.v2", "strings"}, "var v any\n\terr := yaml.Unmarshal([]byte(strings.Repeat(\"[\", 100000)), &v)\n\tif err != nil && strings.Contains(err.Error(), \"exceeded max depth\") {\n\t\treturn \"refused: \" + err.Error()\n\t}\n\treturn fmt.Sprint(\"vulnerable: parsed 100000 nested levels: \", err)"},
	// The fix (a recover in Parse) has no regression test and the advisory
	// quotes no input: this one was found by fuzzing v0.3.6's Parse
	// (go test -fuzz, two minutes).
	"GO-2021-0113": {[]string{"golang.org/x/text/language"}, "t, err := language.Parse(\"00-1901-1901-X\")\n\treturn fmt.Sprint(t, \" \", err)"},
	// The report's minimal crashing input (jsonparser issue #275).
	"GO-2026-4514": {[]string{"github.com/buger/jsonparser"}, "return string(jsonparser.Delete([]byte(`\"0\":\"0\":`), \"0\"))"},
	// x/image/tiff. The report's input (issue 58003 found by OSS-Fuzz; the
	// fix adds no test): one IFD entry whose count claims 1 GiB of SHORTs.
	// The harm is memory, so the reproducer measures what Decode allocated.
	"GO-2023-1572": {[]string{"golang.org/x/image/tiff", "bytes", "encoding/binary", "runtime"}, "data := tiffWith([]byte(\"MM\\x00\\x2a\\x00\\x00\\x00\\x00\"), []tiffEntry{{256, 4, []uint32{1}}, {257, 4, []uint32{1}}, {258, 3, make([]uint32, 2)}})\n\tbinary.BigEndian.PutUint32(data[len(data)-4-12+4:], 1<<29) // the last entry's (BitsPerSample) count: 1 GiB of SHORTs\n\tvar before, after runtime.MemStats\n\truntime.ReadMemStats(&before)\n\t_, err := tiff.DecodeConfig(bytes.NewReader(data))\n\truntime.ReadMemStats(&after)\n\tif mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 256 {\n\t\treturn fmt.Sprintf(\"vulnerable: DecodeConfig allocated %d MiB (error: %v)\", mb, err)\n\t}\n\treturn fmt.Sprint(\"error: \", err)"},
	// The fix's own BenchmarkRepeatedOversizedTileData (v0.10.0): 1,024
	// tiles all pointing at one zlib chunk that inflates to 64 MiB.
	"GO-2023-1989": {[]string{"golang.org/x/image/tiff", "bytes", "compress/zlib", "encoding/binary"}, "var zbuf bytes.Buffer\n\tzw := zlib.NewWriter(&zbuf)\n\tzeros := make([]byte, 1024)\n\tfor i := 0; i < 1<<16; i++ {\n\t\tzw.Write(zeros)\n\t}\n\tzw.Close()\n\tdata := []byte(\"MM\\x00\\x2a\\x00\\x00\\x00\\x00\")\n\tzoff := len(data)\n\tdata = append(data, zbuf.Bytes()...)\n\toffs, sizes := make([]uint32, 1024), make([]uint32, 1024)\n\tfor i := range offs {\n\t\toffs[i], sizes[i] = uint32(zoff), uint32(zbuf.Len())\n\t}\n\tdata = tiffWith(data, []tiffEntry{{256, 4, []uint32{256}}, {257, 4, []uint32{256}}, {258, 3, []uint32{16, 16, 16}}, {259, 3, []uint32{8}}, {262, 3, []uint32{2}}, {322, 4, []uint32{8}}, {323, 4, []uint32{8}}, {324, 4, offs}, {325, 4, sizes}})\n\t_, err := tiff.Decode(bytes.NewReader(data))\n\treturn fmt.Sprint(\"error: \", err)"},
	// The fix's own BenchmarkZeroHeightTile (v0.10.0).
	"GO-2023-1990": {[]string{"golang.org/x/image/tiff", "bytes", "encoding/binary"}, "data := tiffWith([]byte(\"MM\\x00\\x2a\\x00\\x00\\x00\\x00\"), []tiffEntry{{256, 4, []uint32{4294967295}}, {257, 4, []uint32{0}}, {322, 4, []uint32{1}}, {323, 4, []uint32{0}}})\n\t_, err := tiff.Decode(bytes.NewReader(data))\n\treturn fmt.Sprint(\"error: \", err)"},
	// The fix's own TestInvalidPaletteRef and its testdata file (v0.18.0);
	// unpatched, Decode accepts it and reading the pixels panics.
	"GO-2024-2937": {[]string{"golang.org/x/image/tiff", "bytes", "os"}, "contents, err := os.ReadFile(\"{{FIXED}}/testdata/invalid-palette-ref.tiff\")\n\tif err != nil {\n\t\treturn fmt.Sprint(\"no input: \", err)\n\t}\n\timg, err := tiff.Decode(bytes.NewReader(contents))\n\tif err != nil {\n\t\treturn fmt.Sprint(\"error: \", err)\n\t}\n\t// The panic comes when the image is used: every pixel's color.\n\tb := img.Bounds()\n\tfor y := b.Min.Y; y < b.Max.Y; y++ {\n\t\tfor x := b.Min.X; x < b.Max.X; x++ {\n\t\t\timg.At(x, y).RGBA()\n\t\t}\n\t}\n\treturn \"decoded and read every pixel\""},
	// The fix's own TestDecodeOOMIFDOffset (v0.38.0): an IFD offset of
	// 0xFFFFFFFF read through a plain io.Reader. The harm is memory.
	"GO-2026-4815": {[]string{"golang.org/x/image/tiff", "bytes", "io", "runtime"}, "var before, after runtime.MemStats\n\truntime.ReadMemStats(&before)\n\t_, err := tiff.Decode(ioReader{bytes.NewReader([]byte{'M', 'M', 0, 42, 0xff, 0xff, 0xff, 0xff})})\n\truntime.ReadMemStats(&after)\n\tif mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 256 {\n\t\treturn fmt.Sprintf(\"vulnerable: Decode allocated %d MiB (error: %v)\", mb, err)\n\t}\n\treturn fmt.Sprint(\"error: \", err)"},
	// The fix's own regression test (decode_test.go of v2.2.3): nine levels
	// of aliases, 9^9 nodes. Unpatched it expands them until the harness
	// times out.
	"GO-2021-0061": {[]string{"gopkg.in/yaml.v2", "strings"}, "var doc strings.Builder\n\tdoc.WriteString(\"a: &a [00,00,00,00,00,00,00,00,00]\\n\")\n\tfor c := 'b'; c <= 'i'; c++ {\n\t\tfmt.Fprintf(&doc, \"%c: &%c [%s]\\n\", c, c, strings.TrimSuffix(strings.Repeat(\"*\"+string(c-1)+\",\", 9), \",\"))\n\t}\n\tvar v any\n\terr := yaml.Unmarshal([]byte(doc.String()), &v)\n\treturn fmt.Sprint(\"error: \", err)"},
	// The fix's own regression test (limit_test.go of v2.2.8, "1000kb of
	// 10000-nested lines"): quadratic in the simple-key stack unpatched.
	"GO-2020-0036": {[]string{"gopkg.in/yaml.v2", "strings"}, "data := strings.Repeat(\"- \"+strings.Repeat(\"[\", 10000)+strings.Repeat(\"]\", 10000)+\"\\n\", 1000*1024/20000)\n\tvar v any\n\terr := yaml.Unmarshal([]byte(data), &v)\n\treturn fmt.Sprint(\"parsed, error: \", err)"},
	// The advisory's issue #35 (the fix's TestUvarIntCVE_2020_16845 calls
	// readUvarint directly, which a harness cannot): a valid stream header,
	// an index indicator, then a record count whose continuation bit never
	// ends. Unpatched, readUvarint reads forever.
	// The fix's own TestVP8XImageTooLarge header (a 65536x65536 canvas,
	// alpha bit set; its regression test asks DecodeConfig for
	// errInvalidFormat), then an uncompressed alpha chunk and the VP8 frame
	// of the fixed version's smallest lossy test file, so that Decode gets
	// past the header. On 32-bit platforms 65536*65536 wraps to 0: the
	// alpha plane is empty and the first pixel read panics.
	"GO-2026-4961": {[]string{"golang.org/x/image/webp", "bytes", "encoding/binary", "os"}, "lossy, err := os.ReadFile(\"{{FIXED}}/testdata/blue-purple-pink.lossy.webp\")\n\tif err != nil {\n\t\treturn fmt.Sprint(\"no input: \", err)\n\t}\n\tdata := []byte(\"RIFF\\x00\\x00\\x00\\x00WEBPVP8X\\x0a\\x00\\x00\\x00\\x10\\x00\\x00\\x00\\xff\\xff\\x00\\xff\\xff\\x00ALPH\\x01\\x00\\x00\\x00\\x00\\x00\")\n\tdata = append(data, lossy[12:]...) // the file's VP8 chunk\n\tbinary.LittleEndian.PutUint32(data[4:], uint32(len(data)-8))\n\timg, err := webp.Decode(bytes.NewReader(data))\n\tif err != nil {\n\t\treturn fmt.Sprint(\"error: \", err)\n\t}\n\tb := img.Bounds()\n\timg.At(b.Min.X, b.Min.Y).RGBA()\n\treturn fmt.Sprint(\"decoded \", b, \" and read a pixel\")"},
	"GO-2020-0016": {[]string{"github.com/ulikunitz/xz", "bytes", "encoding/binary", "hash/crc32", "io"}, "hdr := []byte(\"\\xfd7zXZ\\x00\\x00\\x01\")\n\thdr = binary.LittleEndian.AppendUint32(hdr, crc32.ChecksumIEEE(hdr[6:8]))\n\thdr = append(hdr, 0)\n\tpr, pw := io.Pipe()\n\tdefer pr.Close()\n\tgo func() {\n\t\tb := bytes.Repeat([]byte{0x80}, 4096)\n\t\tfor {\n\t\t\tif _, err := pw.Write(b); err != nil {\n\t\t\t\treturn\n\t\t\t}\n\t\t}\n\t}()\n\tr, err := xz.NewReader(io.MultiReader(bytes.NewReader(hdr), pr))\n\tif err != nil {\n\t\treturn fmt.Sprint(\"error: \", err)\n\t}\n\t_, err = io.ReadAll(r)\n\treturn fmt.Sprint(\"error: \", err)"},
}

// tiffDecls builds big-endian TIFFs for the x/image rows, as the fixes'
// own test helpers (newTIFF, appendIFD of tiff/reader_test.go) do.
const tiffDecls = `
type tiffEntry struct {
	tag, typ uint16 // typ 3: SHORT, 4: LONG
	vals     []uint32
}

// tiffWith appends an IFD of ents (sorted by tag) to b, a TIFF header and
// data, and points the header at it.
func tiffWith(b []byte, ents []tiffEntry) []byte {
	be := binary.BigEndian
	put := func(dst []byte, typ uint16, x uint32) []byte {
		if typ == 3 {
			return be.AppendUint16(dst, uint16(x))
		}
		return be.AppendUint32(dst, x)
	}
	var ifd []byte
	for _, e := range ents {
		ifd = be.AppendUint16(ifd, e.tag)
		ifd = be.AppendUint16(ifd, e.typ)
		ifd = be.AppendUint32(ifd, uint32(len(e.vals)))
		size := 4
		if e.typ == 3 {
			size = 2
		}
		if len(e.vals)*size <= 4 {
			var v []byte
			for _, x := range e.vals {
				v = put(v, e.typ, x)
			}
			for len(v) < 4 {
				v = append(v, 0)
			}
			ifd = append(ifd, v...)
			continue
		}
		ifd = be.AppendUint32(ifd, uint32(len(b)))
		for _, x := range e.vals {
			b = put(b, e.typ, x)
		}
	}
	be.PutUint32(b[4:8], uint32(len(b)))
	b = be.AppendUint16(b, uint16(len(ents)))
	b = append(b, ifd...)
	return be.AppendUint32(b, 0)
}
`

// reproDecls are package-level declarations some reproducers need.
var reproDecls = map[string]string{"GO-2023-1572": tiffDecls, "GO-2023-1989": tiffDecls, "GO-2023-1990": tiffDecls,
	"GO-2026-4815": "// ioReader hides bytes.Reader's ReadAt, as the fix's test does.\ntype ioReader struct{ io.Reader }\n"}

// fixes are entries of the Go vulnerability database whose vulnerable and
// fixed versions the module proxy serves.
var fixes = []fix{
	{"GO-2021-0059", "github.com/tidwall/gjson", "v1.6.3", "v1.6.4", nil, "squash", ""},
	{"GO-2022-0957", "github.com/tidwall/gjson", "v1.6.4", "v1.6.5", nil, "parseObject, queryMatches", ""},
	{"GO-2021-0054", "github.com/tidwall/gjson", "v1.6.5", "v1.6.6", nil, "unwrap", ""},
	{"GO-2021-0265", "github.com/tidwall/gjson", "v1.9.2", "v1.9.3", nil, "Get (path match)", ""},
	{"GO-2021-0089", "github.com/buger/jsonparser", "v0.0.0-20191204142016-1a29609e0929", "v1.0.0", nil, "findKeyStart", ""},
	{"GO-2021-0057", "github.com/buger/jsonparser", "v1.1.0", "v1.1.1", nil, "searchKeys", ""},
	// Reported in 2026 against v1.1.1 (vulnerable_at); fixed in v1.1.2 per
	// the maintainers' issue #275, which the database's report cites.
	{"GO-2026-4514", "github.com/buger/jsonparser", "v1.1.1", "v1.1.2", nil, "Delete", ""},
	{"GO-2020-0015", "golang.org/x/text", "v0.3.2", "v0.3.3", []string{"encoding/unicode", "transform"}, "utf16Decoder.Transform", ""},
	{"GO-2021-0113", "golang.org/x/text", "v0.3.6", "v0.3.7", []string{"language", "internal/language"}, "language.Parse", ""},
	{"GO-2022-1059", "golang.org/x/text", "v0.3.7", "v0.3.8", []string{"language", "internal/language"}, "ParseAcceptLanguage", ""},
	{"GO-2021-0061", "gopkg.in/yaml.v2", "v2.2.2", "v2.2.3", nil, "decoder.unmarshal (alias chasing)", ""},
	{"GO-2022-0956", "gopkg.in/yaml.v2", "v2.2.3", "v2.2.4", nil, "yaml_parser_increase_flow_level, yaml_parser_roll_indent", ""},
	{"GO-2020-0036", "gopkg.in/yaml.v2", "v2.2.7", "v2.2.8", nil, "yaml_parser_fetch_more_tokens and friends", ""},
	{"GO-2022-0603", "gopkg.in/yaml.v3", "v3.0.0-20210107192922-496545a6307b", "v3.0.0-20220521103104-8f96da9f5d5e", nil, "Unmarshal", ""},
	// Every report for golang.org/x/image (a second family, chosen before
	// any of it ran): all in x/image/tiff.
	{"GO-2023-1572", "golang.org/x/image", "v0.4.0", "v0.5.0", []string{"tiff"}, "DecodeConfig (IFD entry sizes)", ""},
	{"GO-2023-1989", "golang.org/x/image", "v0.9.0", "v0.10.0", []string{"tiff"}, "Decode (compressed tile data size)", ""},
	{"GO-2023-1990", "golang.org/x/image", "v0.9.0", "v0.10.0", []string{"tiff"}, "Decode (zero-height tiles)", ""},
	{"GO-2024-2937", "golang.org/x/image", "v0.17.0", "v0.18.0", []string{"tiff"}, "Decode (palette index)", ""},
	{"GO-2026-4815", "golang.org/x/image", "v0.37.0", "v0.38.0", []string{"tiff"}, "buffer.fill, buffer.ReadAt", ""},
	// A panic on 32-bit platforms only: run for 386.
	{"GO-2026-4961", "golang.org/x/image", "v0.38.0", "v0.39.0", []string{"webp"}, "webp.decode", "386"},
	{"GO-2026-4962", "golang.org/x/image", "v0.38.0", "v0.39.0", []string{"font/sfnt"}, "source.view", ""},
	{"GO-2020-0016", "github.com/ulikunitz/xz", "v0.5.7", "v0.5.8", []string{"", "lzma"}, "readUvarint", ""},
	// vulnerable_at v0.5.14 → fixed v0.5.15, as the database says; v0.5.15
	// only makes the dictionary cap fit a 32-bit int (1<<31 → 1<<31-1).
	// No trigger: on 64-bit both versions cap the dictionary at 2 GiB, and
	// for 386 v0.5.14 does not compile ("cannot use 1 << 31 ... as int
	// value in assignment (overflows)": -only GO-2025-3922 -goarch 386), so
	// there is no 32-bit program to patch. The row runs on graft's GOARCH.
	{"GO-2025-3922", "github.com/ulikunitz/xz", "v0.5.14", "v0.5.15", []string{"", "lzma"}, "lzma.NewReader (dictionary capacity)", ""},
}

func main() {
	only := flag.String("only", "", "run only these advisory ids (comma-separated)")
	verbose := flag.Bool("v", false, "print every change of every fix")
	flag.DurationVar(&reproTimeout, "timeout", reproTimeout, "how long the harness waits for the reproducer's answer: later counts as a hang")
	keep := flag.Bool("keep", false, "keep the work directory (harnesses, plugins and their generated source)")
	goarch := flag.String("goarch", "", "run every selected row for this GOARCH (default: each row's own, else graft's)")
	flag.Parse()
	ctx := context.Background()
	work, err := os.MkdirTemp("", "graft-vulns-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "work directory:", work)
	} else {
		defer os.RemoveAll(work)
	}
	fmt.Println("| advisory | module | vulnerable → fixed | changed funcs | admitted | plugin built | reproducer stopped in the running program | refused / not built / not stopped because | make time |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	var admitted, built, stopped, total int
	for _, f := range fixes {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), f.id) {
			continue
		}
		total++
		if *goarch != "" {
			f.goarch = *goarch
		}
		start := time.Now()
		res, err := run(ctx, work, f)
		el := time.Since(start)
		if err != nil {
			fmt.Printf("| %s | %s | %s → %s%s | – | error | – | – | %s | |\n", f.id, f.module, short(f.from), short(f.to), archNote(f), oneLine(err.Error()))
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
		repro := "not run (no trigger input here)"
		switch {
		case !res.built:
			repro = "–"
		case res.applyErr != nil:
			repro = "no"
			why = "apply failed: " + res.applyErr.Error()
		case res.before == "":
		case !bad(res.before):
			repro = "trigger did not reproduce"
			why = fmt.Sprintf("unpatched answer %q; patched %q", res.before, res.after)
		case res.fixedErr != nil:
			repro = "no"
			why = fmt.Sprintf("before %q, after %q; the fixed release could not be run: %v", res.before, res.after, res.fixedErr)
		case bad(res.fixed) && !timedOut(res.fixed):
			repro = "trigger does not tell the fixed release apart"
			why = fmt.Sprintf("before %q, after %q, fixed release %q", res.before, res.after, res.fixed)
		case bad(res.after) && !timedOut(res.after):
			repro = "no"
			why = fmt.Sprintf("before %q, after %q", res.before, res.after)
		case res.slow != nil || timedOut(res.fixed) || timedOut(res.after):
			// The unpatched trigger timed out (or the patched program or
			// the fixed release did): CPU times and instructions against
			// the fixed release's decide (slowRule).
			ok, detail := res.slow.verdict()
			why = fmt.Sprintf("before: %q; after: %q; fixed release: %q. %s", res.before, res.after, res.fixed, detail)
			repro = "no"
			if ok {
				repro = "**yes** (the fixed release's instructions, within graft's per-call cost)"
				stopped++
			}
		case stripTime(res.after) != stripTime(res.fixed):
			repro = "no (answers, but not as the fixed release)"
			why = fmt.Sprintf("before %q, after %q, fixed release %q", res.before, res.after, res.fixed)
		default:
			repro = "**yes**"
			stopped++
			why = fmt.Sprintf("before: %q; after: %q, the fixed release's answer", res.before, res.after)
		}
		if res.before != "" && res.applyErr == nil {
			switch {
			case res.sameProcess:
				why += " (one process: triggered, patched, triggered again)"
			case strings.HasPrefix(res.before, crashed):
				why += " (patched in a second process of the same binary: the first died)"
			default:
				why += " (patched in a second process of the same binary: the hung trigger keeps the old body on a stack)"
			}
		}
		if len(why) > 700 {
			why = why[:700] + "…"
		}
		fmt.Printf("| %s | %s | %s → %s%s | %d | %s | %s | %s | %s | %.1fs (%.1fs total) |\n", f.id, f.module, short(f.from), short(f.to), archNote(f), funcs, verdict, plugin, repro, oneLine(why), res.makeDur.Seconds(), el.Seconds())
	}
	fmt.Printf("\nAdmitted: %d of %d. Plugin built against the real instrumented build: %d of %d. Reproducer stopped in the running program: %d of %d.\n", admitted, total, built, total, stopped, total)
}

// archNote marks a row run for another GOARCH than graft's own.
func archNote(f fix) string {
	if f.goarch == "" || f.goarch == runtime.GOARCH {
		return ""
	}
	return " (" + f.goarch + ")"
}

// env is what every go command of the row adds to its environment: for a
// row that needs another GOARCH than graft's, that GOARCH (and cgo, which
// plugins need), so that its trees are loaded, its harness built and its
// plugin made for it.
func (f fix) env() []string {
	if f.goarch == "" || f.goarch == runtime.GOARCH {
		return nil
	}
	return []string{"GOARCH=" + f.goarch, "CGO_ENABLED=1"}
}

// result is one row of the table.
type result struct {
	report   *api.PatchReport
	genErr   error // generator could not express the admitted patch
	built    bool  // plugin built against the target build
	buildErr error
	makeDur  time.Duration
	// before and after are the reproducer's answers from the running
	// program without and with the patch ("" when there is no reproducer).
	before, after string
	applyErr      error
	// sameProcess: the trigger, the patch and the trigger again ran in
	// one process (the unpatched trigger returned: a panic or a measured
	// allocation). After a hang the old body is still on the hung
	// goroutine's stack, so a second process of the same binary is
	// patched instead.
	sameProcess bool
	// fixed is the fixed release's answer, from the same harness built the
	// same way against the fixed version; slow is the time comparison
	// made when the fixed release itself times out (slowRule).
	fixed    string
	fixedErr error
	slow     *slowRun
}

// run fetches both versions, builds a harness program that links the
// vulnerable packages with graft build (the module instrumented), and runs
// the patch pipeline against that build: diff with the build's real patch
// points, generate, build and sign the plugin; with a reproducer, it runs
// the harness, applies the patch to it and triggers the bug again.
func run(ctx context.Context, work string, f fix) (*result, error) {
	var dirs [2]string
	lo := patch.LoadOptions{ModMod: true, Env: f.env()}
	for _, p := range f.pkgs {
		lo.Patterns = append(lo.Patterns, "./"+p)
	}
	for i, v := range []string{f.from, f.to} {
		dir, err := patch.FetchModule(ctx, f.module+"@"+v, work)
		if err != nil {
			return nil, err
		}
		dirs[i] = dir
	}
	oldTree, err := patch.LoadTree(ctx, dirs[0], lo)
	if err != nil {
		return nil, err
	}
	with, err := bumped(dirs, oldTree)
	if err != nil {
		return nil, err
	}
	// Test data of the fixed version, from the module cache (graft's copy
	// of a module leaves testdata out).
	fixedSrc, err := moduleCacheDir(ctx, f.module, f.to)
	if err != nil {
		return nil, err
	}
	hdir, err := writeHarness(ctx, work, f, dirs[0], fixedSrc, oldTree, "")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	inst := []string{f.module + "/..."}
	for _, d := range with {
		inst = append(inst, d.Module+"/...")
	}
	b, err := instrument.Prepare(ctx, instrument.Options{Dir: hdir, Patterns: []string{"."}, Instrument: inst, Patchable: true, Env: f.env()})
	if err != nil {
		return nil, fmt.Errorf("graft build of the harness: %w", err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	so := filepath.Join(work, "p-"+safe(f.id)+".so")
	// The public key beside the plugin, so that a kept plugin can be
	// applied by hand: graft patch apply --rt SOCK --pub p-ID.pub p-ID.so.
	if pem, err := api.MarshalPublicKey(pub); err == nil {
		os.WriteFile(strings.TrimSuffix(so, ".so")+".pub", pem, 0o644)
	}
	start := time.Now()
	a, err := patch.Make(ctx, patch.MakeOptions{From: dirs[0], To: dirs[1], With: with, Target: &b.Manifest, Load: lo, Key: priv, Out: so,
		Builder: &patch.InstrumentBuilder{Target: &b.Manifest}})
	res := &result{makeDur: time.Since(start)}
	if a != nil {
		res.report = a.Report
		if a.Source != nil {
			os.WriteFile(strings.TrimSuffix(so, ".so")+".go", a.Source, 0o644)
		}
	}
	switch {
	case errors.Is(err, patch.ErrNotAdmitted):
		return res, nil
	case errors.Is(err, patch.ErrUnsupported):
		res.genErr = err
		return res, nil
	case err != nil && res.report != nil:
		res.buildErr = err
		return res, nil
	case err != nil:
		return nil, err
	}
	res.built = true
	if _, ok := repros[f.id]; !ok {
		return res, nil
	}
	bin, err := linkHarness(ctx, b, work, f, "")
	if err != nil {
		return nil, err
	}
	apply := func(h *proc) error {
		if err := h.awaitSocket(ctx); err != nil {
			return err
		}
		_, err := patch.Apply(ctx, h.sock, so, patch.ApplyOptions{Pub: pub, BuildID: b.Manifest.Build.ID, Wait: 2 * time.Second})
		return err
	}
	// Unpatched: the trigger must show the bug.
	h, err := startProc(bin, work)
	if err != nil {
		return nil, err
	}
	defer h.stop()
	if res.before, err = h.repro(reproTimeout); err != nil {
		// The process died before answering (a decoder that exhausts
		// memory): no answer, as a hang gives none.
		res.before = crashed + err.Error()
	}
	if !noAnswer(res.before) {
		// The trigger returned: patch this very process and trigger again.
		res.sameProcess = true
	} else {
		// A hang keeps a goroutine in the old body: the safe point would
		// (rightly) wait for it forever, so a fresh process is patched
		// (and after a crash, there is no process left to patch).
		h.stop()
		if h, err = startProc(bin, work); err != nil {
			return nil, err
		}
		defer h.stop()
	}
	if res.applyErr = apply(h); res.applyErr != nil {
		return res, nil
	}
	if res.after, err = h.repro(reproTimeout); err != nil {
		return nil, err
	}
	h.stop()
	// The fixed release, run the same way: the reference for what the
	// patched program's answer must be.
	fixedBin, err := buildHarness(ctx, work, f, dirs[1], fixedSrc, oldTree, "fixed", inst)
	if err != nil {
		res.fixedErr = err
		return res, nil
	}
	if res.fixed, res.fixedErr = answerOnce(fixedBin, work, nil, reproTimeout); res.fixedErr != nil {
		return res, nil
	}
	if noAnswer(res.before) || timedOut(res.fixed) || timedOut(res.after) {
		// The bug is a hang or a CPU-time denial of service: whether the
		// patched program is fixed or merely faster is a matter of the
		// work it does, which the timeout measures only on an idle
		// machine; CPU times and instructions against the fixed
		// release's decide (slowRule), for every such row alike,
		// whatever the load.
		res.slow, res.fixedErr = compareSlow(ctx, bin, fixedBin, work, apply)
	}
	return res, nil
}

// bumped lists the requirements the fixed version changes that the
// tree's packages import: a fix that bumps a dependency lives partly in it
// (gjson and tidwall/match), so the dependency is diffed along.
func bumped(dirs [2]string, t *patch.Tree) ([]patch.Dependency, error) {
	var reqs [2]map[string]string
	for i, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err != nil {
			return nil, err
		}
		f, err := modfile.ParseLax("go.mod", b, nil)
		if err != nil {
			return nil, err
		}
		reqs[i] = map[string]string{}
		for _, r := range f.Require {
			reqs[i][r.Mod.Path] = r.Mod.Version
		}
	}
	imported := func(mod string) bool {
		for _, p := range t.Pkgs {
			for imp := range p.Imports {
				if imp == mod || strings.HasPrefix(imp, mod+"/") {
					return true
				}
			}
		}
		return false
	}
	var out []patch.Dependency
	for mod, nv := range reqs[1] {
		if ov := reqs[0][mod]; ov != "" && ov != nv && imported(mod) {
			out = append(out, patch.Dependency{Module: mod, From: ov, To: nv})
		}
	}
	slices.SortFunc(out, func(a, b patch.Dependency) int { return strings.Compare(a.Module, b.Module) })
	return out, nil
}

// moduleCacheDir is where the module cache holds mod@version.
func moduleCacheDir(ctx context.Context, mod, version string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	esc, err := module.EscapePath(mod)
	if err != nil {
		return "", err
	}
	return filepath.Join(strings.TrimSpace(string(out)), esc+"@"+version), nil
}

func safe(id string) string { return strings.NewReplacer(" ", "_", "(", "", ")", "").Replace(id) }

// reproTimeout is how long the harness waits for the reproducer: an answer
// later than that counts as a hang (or a CPU-time denial of service).
var reproTimeout = 3 * time.Second

func bad(answer string) bool {
	for _, p := range []string{"panic", "timeout", "vulnerable", crashed} {
		if strings.HasPrefix(answer, p) {
			return true
		}
	}
	return false
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
