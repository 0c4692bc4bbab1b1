package worker

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/graftdev/graft/internal/shadow/differ"
)

func TestWireRoundTrip(t *testing.T) {
	req := &Request{Method: "PUT", Path: "/a/b", RawQuery: "x=1", Header: http.Header{"Accept": {"a", "b"}, "X-Empty": {}}, Body: []byte("payload")}
	primary := &differ.Answer{Status: 201, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"a":1}`), Truncated: true}
	b := AppendExchange(nil, 7, req, primary)
	b = AppendOutcome(b, &Outcome{Slot: 9, Flags: SecondaryFailed})
	withAnswers := &Outcome{Slot: 3, Outcome: differ.Outcome{Noise: []string{"body.at"}, Diffs: []string{"body.at", "status"},
		Primary: primary, Secondary: &differ.Answer{Err: errors.New("refused")}, Candidate: &differ.Answer{Status: 500, Body: []byte("x")}}}
	b = AppendOutcome(b, withAnswers)
	fr := newFrameReader(bytes.NewReader(b))

	typ, p, err := fr.next()
	if err != nil || typ != frameExchange {
		t.Fatalf("frame 1: %q %v", typ, err)
	}
	slot, r, a, err := decodeExchange(p)
	if err != nil || slot != 7 || r.Method != "PUT" || r.Path != "/a/b" || r.RawQuery != "x=1" || !slices.Equal(r.Header["Accept"], []string{"a", "b"}) ||
		string(r.Body) != "payload" || a.Status != 201 || a.Header.Get("Content-Type") != "application/json" || string(a.Body) != `{"a":1}` || !a.Truncated {
		t.Errorf("exchange: slot %d %+v %+v %v", slot, r, a, err)
	}
	typ, p, err = fr.next()
	if err != nil || typ != frameOutcome {
		t.Fatalf("frame 2: %q %v", typ, err)
	}
	if o, err := decodeOutcome(p); err != nil || o.Slot != 9 || o.Flags != SecondaryFailed || o.Candidate != nil || o.Noise != nil {
		t.Errorf("outcome without answers: %+v %v", o, err)
	}
	typ, p, err = fr.next()
	if err != nil || typ != frameOutcome {
		t.Fatalf("frame 3: %q %v", typ, err)
	}
	o, err := decodeOutcome(p)
	if err != nil || o.Slot != 3 || o.Flags != outAnswers || !slices.Equal(o.Noise, withAnswers.Noise) || !slices.Equal(o.Diffs, withAnswers.Diffs) ||
		o.Secondary.Err == nil || o.Secondary.Err.Error() != "refused" || o.Candidate.Status != 500 || string(o.Candidate.Body) != "x" || !o.Primary.Truncated {
		t.Errorf("outcome with answers: %+v %v", o, err)
	}
	if _, _, err := fr.next(); err == nil {
		t.Error("read past the last frame")
	}

	// Every cut of a frame is refused, never a panic or a partial value.
	full := AppendExchange(nil, 1, req, primary)
	for n := 5; n < len(full); n++ {
		if _, _, _, err := decodeExchange(full[5:n]); err == nil {
			t.Errorf("exchange cut at %d decoded", n)
		}
	}
	for _, bad := range [][]byte{{0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}} {
		if _, _, err := newFrameReader(bytes.NewReader(bad)).next(); !errors.Is(err, ErrFrame) {
			t.Errorf("length %x: %v, want ErrFrame", bad, err)
		}
	}
}

// graft's end reads outcomes and refuses anything else.
func TestOutcomeReader(t *testing.T) {
	out := AppendOutcome(nil, &Outcome{Slot: 4, Outcome: differ.Outcome{Diffs: []string{"status"}, Candidate: &differ.Answer{Status: 500}}})
	tests := []struct {
		name   string
		stream []byte
		slot   uint32 // of the first outcome, when there is one
		err    error  // of the first Next
	}{
		{"outcome", out, 4, nil},
		{"closed between frames", nil, 0, io.EOF},
		{"exchange frame", AppendExchange(nil, 1, &Request{Method: "GET", Path: "/"}, &differ.Answer{Status: 200}), 0, ErrFrame},
		{"cut frame", out[:len(out)-1], 0, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := NewOutcomeReader(bytes.NewReader(tt.stream)).Next()
			if !errors.Is(err, tt.err) {
				t.Fatalf("Next: %v, want %v", err, tt.err)
			}
			if tt.err == nil && (o.Slot != tt.slot || o.Candidate == nil || o.Candidate.Status != 500 || !slices.Equal(o.Diffs, []string{"status"})) {
				t.Errorf("outcome %+v, want slot %d with the candidate's 500", o, tt.slot)
			}
		})
	}
}

// FuzzFrames: a frame from the other end, whatever its bytes, decodes
// or is refused; it never panics or allocates without bound.
func FuzzFrames(f *testing.F) {
	req := &Request{Method: "GET", Path: "/", Header: http.Header{"A": {"b"}}}
	f.Add(AppendExchange(nil, 1, req, &differ.Answer{Status: 200, Body: []byte("{}")})[5:])
	f.Add(AppendOutcome(nil, &Outcome{Slot: 2, Outcome: differ.Outcome{Diffs: []string{"status"}, Candidate: &differ.Answer{Status: 500}}})[5:])
	f.Fuzz(func(t *testing.T, p []byte) {
		decodeExchange(p)
		decodeOutcome(p)
	})
}

func TestConnRefuses(t *testing.T) {
	for _, env := range []map[string]string{{}, {Env: "4"}} {
		if c, err := Conn(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "only graft starts") {
			t.Errorf("env %v: conn %v err %v, want a refusal", env, c, err)
		}
	}
}
