package funcseal

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftdev/graft/api"
	"github.com/graftdev/graft/internal/instrument"
	"github.com/graftdev/graft/internal/listener"
	"github.com/graftdev/graft/internal/supervisor"
)

func TestParseTrace(t *testing.T) {
	data, err := os.ReadFile("testdata/trace.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in   string
		reason     string
		firstFrame string
		frames     int
	}{
		{"recorded", string(data), "panic: runtime error: index out of range [7] with length 3", "main.lookup", 2},
		{"no panic", "exit status 1\nsomething\n", "", "", 0},
		{"fatal error", "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\nmain.main()\n\t/x/main.go:5 +0x1\n", "fatal error: all goroutines are asleep - deadlock!", "main.main", 1},
		{"repanicking deferred handler", "panic: internal error [recovered, repanicked]\n\ngoroutine 1 [running]:\ngopkg.in/yaml%2ev3.handleErr(0xc)\n\t/m/yaml.go:294 +0x85\npanic({0x1, 0x2})\n\t/go/src/runtime/panic.go:1 +0x1\ngopkg.in/yaml%2ev3.(*parser).parse(0xc)\n\t/m/decode.go:163 +0x1\ngopkg.in/yaml%2ev3.unmarshal(0xc)\n\t/m/yaml.go:1 +0x1\n", "panic: internal error [recovered, repanicked]", "gopkg.in/yaml.v3.(*parser).parse", 2},
		{"escaped path and runtime frames", "panic: boom\n\ngoroutine 1 [running]:\npanic({0x1, 0x2})\n\t/go/src/runtime/panic.go:1 +0x1\ngopkg.in/yaml%2ev3.(*parser).parse(0xc)\n\t/m/parserc.go:9 +0x1\n", "panic: boom", "gopkg.in/yaml.v3.(*parser).parse", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reason, frames := ParseTrace([]byte(tc.in))
			if reason != tc.reason || len(frames) != tc.frames || (tc.frames > 0 && frames[0] != tc.firstFrame) {
				t.Errorf("got %q %q; want %q, %d frames starting %q", reason, frames, tc.reason, tc.frames, tc.firstFrame)
			}
		})
	}
}

func TestCulprit(t *testing.T) {
	m := &api.Manifest{Points: []api.Point{{ID: "main.lookup"}, {ID: "main.handle"}}}
	s := New(nopSup{}, m, Options{})
	tests := []struct {
		frames []string
		want   string
	}{
		{[]string{"main.lookup", "main.handle.func1"}, "main.lookup"},
		{[]string{"main.leaf", "main.handle.func1"}, "main.handle"},
		{[]string{"fmt.Sprint", "other.F"}, ""},
	}
	for _, tc := range tests {
		if got := s.Culprit(tc.frames); got != tc.want {
			t.Errorf("Culprit(%q) = %q, want %q", tc.frames, got, tc.want)
		}
	}
}

func FuzzParseTrace(f *testing.F) {
	data, _ := os.ReadFile("testdata/trace.txt")
	f.Add(string(data))
	f.Add("panic: x\n\ngoroutine 1 [running]:\nmain.f(...)\n")
	f.Fuzz(func(t *testing.T, s string) {
		reason, frames := ParseTrace([]byte(s))
		if reason == "" && len(frames) > 0 {
			t.Errorf("frames without a panic: %q", frames)
		}
		for _, fr := range frames {
			if strings.HasPrefix(fr, "runtime.") {
				t.Errorf("runtime frame kept: %q", fr)
			}
		}
	})
}

type nopSup struct{}

func (nopSup) OnCrash(func(supervisor.Crash)) {}
func (nopSup) AddEnv(func(int) []string)      {}
func (nopSup) Event(int, string, string)      {}

// syncBuffer collects the supervisor's child output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSelfHealingLoop runs a real instrumented service under the real
// supervisor, crashes it with one request, and checks that the next
// generation starts with the crashing function sealed and answers that
// request with an error instead of dying.
func TestSelfHealingLoop(t *testing.T) {
	dir, _ := filepath.Abs("../checks/testdata/svc")
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "svc")
	b, err := instrument.Prepare(t.Context(), instrument.Options{Dir: dir, CacheDir: filepath.Join(tmp, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := b.Command(t.Context(), "build", nil, "-o", bin, ".")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	manifest := bin + ".graft.json"
	if err := b.WriteManifest(manifest); err != nil {
		t.Fatal(err)
	}

	var output syncBuffer
	sup, err := supervisor.New(supervisor.Options{
		Listen:         []listener.Spec{{Name: "http", Addr: "127.0.0.1:0"}},
		Command:        []string{bin},
		Proxy:          true,
		Output:         &output,
		RestartBackoff: 50 * time.Millisecond,
		RuntimeDir:     filepath.Join(tmp, "run"),
	})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := Attach(sup, manifest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	if err := sup.WaitFor(ctx, func(st *api.Status) bool { return st.Serving > 0 }); err != nil {
		t.Fatal(err)
	}
	base := "http://" + sup.Addrs()[0]
	get := func(i string) (int, string) {
		resp, err := http.Get(base + "/?i=" + i)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	if code, body := get("1"); code != 200 || body != "b" {
		t.Fatalf("before the crash: %d %q", code, body)
	}
	get("7") // kills generation 1
	if err := sup.WaitFor(ctx, func(st *api.Status) bool { return st.Serving > 1 }); err != nil {
		t.Fatalf("no restart: %v\n%s", err, output.String())
	}
	if got := sealer.Sealed(); len(got) != 1 || got[0] != "main.lookup" {
		t.Fatalf("sealed %q, want [main.lookup]\n%s", got, output.String())
	}
	code, body := get("7")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "main.lookup is sealed") {
		t.Errorf("after sealing: %d %q, want 503 naming the sealed function", code, body)
	}
	// The service stays up: the same request again, then status.
	if code, _ := get("7"); code != http.StatusServiceUnavailable {
		t.Errorf("second request after sealing: %d", code)
	}
	var st *api.Status
	sup.WaitFor(ctx, func(s *api.Status) bool { st = s; return true })
	sealedEvent := false
	for _, e := range st.Events {
		if e.Kind == "sealed" && strings.Contains(e.Message, "main.lookup") {
			sealedEvent = true
		}
	}
	if !sealedEvent || st.Serving != 2 {
		t.Errorf("status: serving %d, events %+v; want generation 2 serving and a sealed event", st.Serving, st.Events)
	}
}

var _ = exec.Command
