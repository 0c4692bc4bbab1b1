package callgrind

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTotal(t *testing.T) {
	for _, tc := range []struct {
		name, dump string
		want       uint64
		wantErr    bool
	}{
		// callgrind_control -d after -i on/off: the summary counts what ran
		// before instrumentation was on.
		{"totals after a zero summary", "version: 1\ncmd:  ./h.bin\nevents: Ir\nsummary: 0\n\nfn=(1) main.f\n16 3\ntotals: 2759166715\n", 2759166715, false},
		{"no totals", "version: 1\nevents: Ir\nsummary: 12\n", 0, true},
		{"malformed totals", "totals: many\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "callgrind.out.1")
			if err := os.WriteFile(file, []byte(tc.dump), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := Total(file)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("Total = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
