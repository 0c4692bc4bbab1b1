package differ

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"html"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenReport is a report made by a real Differ from fixed answers, with
// fixed counters and times.
func goldenReport(t *testing.T) *api.Report {
	t.Helper()
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	for i := range 40 {
		p := &Answer{Status: 200, Header: h, Body: []byte(`{"id":7,"price":10,"at":"t1","tags":["<b>"]}`)}
		s := &Answer{Status: 200, Header: h, Body: []byte(`{"id":7,"price":10,"at":"t2","tags":["<b>"]}`)}
		c := &Answer{Status: 200, Header: h, Body: []byte(`{"id":7,"price":11,"at":"t3","tags":["<b>"]}`)}
		d.Add("GET", "/items/"+string(rune('0'+i%10)), "q=1", p, s, c)
		d.Add("GET", "/health", "", &Answer{Status: 200, Body: []byte("ok")}, &Answer{Status: 200, Body: []byte("ok")}, &Answer{Status: 200, Body: []byte("ok")})
	}
	j := d.Judge()
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	return &api.Report{
		Version: api.Version, State: api.ShadowDone, Verdict: j.Verdict, Reason: j.Reason, Ended: "verdict",
		Started: start, Finished: start.Add(90 * time.Second), Candidate: []string{"./server-v2", "--port", "{port}"},
		Requests: 100, Eligible: 90, Mirrored: 85, Compared: 80, Dropped: 5,
		Alpha: 0.01, TargetRate: 0.01, Confidence: 0.95, Routes: j.Routes,
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (go test -update rewrites it):\n%s", name, got)
	}
}

func TestWriteTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, goldenReport(t)); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "report.txt", b.Bytes())
	if !strings.Contains(b.String(), "verdict: fail") || !regexp.MustCompile(`body\.price +40 +0 +40 +0 +\S+ +DIVERGENT`).MatchString(b.String()) {
		t.Errorf("text report lacks the verdict or the divergent field:\n%s", b.String())
	}
}

func TestWriteHTMLGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, goldenReport(t)); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "report.html", b.Bytes())
	if strings.Contains(b.String(), `["<b>"]`) {
		t.Error("HTML report does not escape answer bodies")
	}
}

// TestHTMLInChromium loads the HTML report in headless Chromium and checks
// the DOM it built: the verdict, one section per route, the divergent field
// marked, and the three answers of the example side by side.
func TestHTMLInChromium(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium not installed (apt-get install -y chromium); skipping the headless browser check of the HTML report")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := WriteHTML(&b, goldenReport(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	shot := filepath.Join(dir, "report.png")
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + filepath.Join(dir, "profile")}
	cmd := exec.CommandContext(ctx, bin, append(args, "--dump-dom", "file://"+page)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`data-rendered="([^"]*)"`).FindSubmatch(dom)
	if m == nil {
		t.Fatalf("the page's script did not run: no data-rendered in the DOM:\n%.2000s", dom)
	}
	var rendered struct{ Routes, Fields, Divergent, Examples int }
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &rendered); err != nil {
		t.Fatalf("data-rendered %q: %v", m[1], err)
	}
	want := struct{ Routes, Fields, Divergent, Examples int }{Routes: 2, Fields: 2, Divergent: 1, Examples: 1}
	if rendered != want {
		t.Errorf("rendered %+v, want %+v", rendered, want)
	}
	for _, s := range []string{`id="verdict">fail<`, `class="answer primary"`, `class="answer secondary"`, `class="answer candidate"`, `"price":11`} {
		if !strings.Contains(html.UnescapeString(string(dom)), html.UnescapeString(s)) {
			t.Errorf("DOM lacks %s", s)
		}
	}
	// A screenshot proves the page lays out (kept only in the temp dir).
	cmd = exec.CommandContext(ctx, bin, append(args, "--screenshot="+shot, "--window-size=1200,900", "file://"+page)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Errorf("screenshot missing or empty: %v", err)
	}
}
