package live

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// memItem is a string-valued item for tests.
type memItem struct{ v string }

func (m *memItem) item(name string, version int) Item {
	return Item{
		Name:    name,
		Version: version,
		Encode:  func(w io.Writer) error { _, err := io.WriteString(w, m.v); return err },
		Decode: func(r io.Reader) error {
			b, err := io.ReadAll(r)
			m.v = string(b)
			return err
		},
	}
}

func registered(its ...Item) map[string]*item {
	out := map[string]*item{}
	for _, it := range its {
		out[it.Name] = &item{Item: it, up: map[int]Migration{}, down: map[int]Migration{}}
	}
	return out
}

func suffix(s string) Migration {
	return func(b []byte) ([]byte, error) { return append(b, s...), nil }
}

func encodeItems(t *testing.T, epoch uint64, items ...*item) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := encodeState(&buf, epoch, items)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("encodeState reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func TestStateRoundTripAndMigrations(t *testing.T) {
	big := strings.Repeat("x", 3*chunkSize+17) // spans several chunks
	tests := []struct {
		name    string
		sender  func() []*item
		reader  func() map[string]*item
		want    map[string]string
		wantErr string
	}{
		{
			name:   "same version, several chunks",
			sender: func() []*item { return []*item{{Item: (&memItem{big}).item("a", 1)}} },
			reader: func() map[string]*item { return registered((&memItem{}).item("a", 1)) },
			want:   map[string]string{"a": big},
		},
		{
			name:   "older version migrated up twice",
			sender: func() []*item { return []*item{{Item: (&memItem{"v1"}).item("a", 1)}} },
			reader: func() map[string]*item {
				r := registered((&memItem{}).item("a", 3))
				r["a"].up[1], r["a"].up[2] = suffix("+2"), suffix("+3")
				return r
			},
			want: map[string]string{"a": "v1+2+3"},
		},
		{
			name:    "no migration for a step",
			sender:  func() []*item { return []*item{{Item: (&memItem{"v1"}).item("a", 1)}} },
			reader:  func() map[string]*item { return registered((&memItem{}).item("a", 2)) },
			wantErr: "no migration from version 1 to 2",
		},
		{
			name:    "newer than the reader knows",
			sender:  func() []*item { return []*item{{Item: (&memItem{"v2"}).item("a", 2)}} },
			reader:  func() map[string]*item { return registered((&memItem{}).item("a", 1)) },
			wantErr: "at version 2",
		},
		{
			name: "sender adds a down-migrated copy for an older reader",
			sender: func() []*item {
				it := &item{Item: (&memItem{"v2"}).item("a", 2), down: map[int]Migration{2: suffix("-down")}}
				return []*item{it}
			},
			reader: func() map[string]*item { return registered((&memItem{}).item("a", 1)) },
			want:   map[string]string{"a": "v2-down"},
		},
		{
			name: "a reader at the newest version ignores the down copy",
			sender: func() []*item {
				it := &item{Item: (&memItem{"v2"}).item("a", 2), down: map[int]Migration{2: suffix("-down")}}
				return []*item{it}
			},
			reader: func() map[string]*item { return registered((&memItem{}).item("a", 2)) },
			want:   map[string]string{"a": "v2"},
		},
		{
			name:    "item this program does not register",
			sender:  func() []*item { return []*item{{Item: (&memItem{"x"}).item("gone", 1)}} },
			reader:  func() map[string]*item { return registered((&memItem{}).item("a", 1)) },
			wantErr: `"gone" is not registered`,
		},
		{
			name:   "item new in this program keeps its initial state",
			sender: func() []*item { return nil },
			reader: func() map[string]*item { return registered((&memItem{"init"}).item("a", 1)) },
			want:   map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeItems(t, 7, tt.sender()...)
			epoch, entries, err := parseState(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if epoch != 7 {
				t.Fatalf("epoch %d, want 7", epoch)
			}
			todo, err := plan(tt.reader(), entries)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrState) {
					t.Fatalf("plan: %v; want an ErrState containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, e := range todo {
				got[e.name] = string(e.bytes())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("decoded %d items, want %d", len(got), len(tt.want))
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("item %q = %.40q (len %d), want %.40q (len %d)", k, got[k], len(got[k]), v, len(v))
				}
			}
		})
	}
}

func TestParseStateRejectsDamage(t *testing.T) {
	b := encodeItems(t, 1, &item{Item: (&memItem{"hello, state"}).item("a", 1)}, &item{Item: (&memItem{"more"}).item("b", 3)})
	for n := range len(b) {
		if _, _, err := parseState(bytes.NewReader(b[:n])); !errors.Is(err, ErrState) {
			t.Fatalf("stream cut at %d of %d bytes: %v, want ErrState", n, len(b), err)
		}
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, _, err := parseState(bytes.NewReader(c)); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
}

func TestGenLoadRefusesReplay(t *testing.T) {
	g := newGen(Options{NoSignals: true}, fakeEnv(nil))
	m := &memItem{}
	if err := g.Register(m.item("a", 1)); err != nil {
		t.Fatal(err)
	}
	b := encodeItems(t, 1, &item{Item: (&memItem{"first"}).item("a", 1)})
	if _, err := g.load(bytes.NewReader(b)); err != nil || m.v != "first" {
		t.Fatalf("load: %v, value %q", err, m.v)
	}
	m.v = "changed here"
	if _, err := g.load(bytes.NewReader(b)); !errors.Is(err, ErrState) || m.v != "changed here" {
		t.Fatalf("the same stream applied twice: %v, value %q", err, m.v)
	}
}

func FuzzParseState(f *testing.F) {
	var buf bytes.Buffer
	encodeState(&buf, 3, []*item{{Item: (&memItem{"seed"}).item("a", 2)}})
	f.Add(buf.Bytes())
	f.Add([]byte(streamMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		epoch, entries, err := parseState(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Whatever parses must encode back to a stream that parses the same.
		var items []*item
		for _, e := range entries {
			items = append(items, &item{Item: (&memItem{string(e.bytes())}).item(e.name, e.version)})
		}
		var out bytes.Buffer
		if _, err := encodeState(&out, epoch, items); err != nil {
			t.Fatal(err)
		}
		epoch2, entries2, err := parseState(&out)
		if err != nil || epoch2 != epoch || len(entries2) != len(entries) {
			t.Fatalf("re-encoded stream: %v, epoch %d/%d, %d/%d entries", err, epoch2, epoch, len(entries2), len(entries))
		}
	})
}

func FuzzParseControl(f *testing.F) {
	f.Add([]byte(`{"type":"drain","deadline_ms":500}`))
	f.Add([]byte(`{"type":""}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseControl(b)
		if err == nil && m.Type == "" {
			t.Fatal("accepted a message without a type")
		}
	})
}
