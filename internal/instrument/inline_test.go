package instrument

import (
	"fmt"
	"testing"
)

func TestParseInlinable(t *testing.T) {
	out := "# example.com/m/p\n./p.go:3:6: can inline F\n./p.go:5:6: can inline (*T).M with cost 12 as: method(t *T) int { return t.n }\n./p.go:9:10: inlining call to F\n" +
		"# example.com/m/p [example.com/m/p.test]\n./p_test.go:3:6: can inline helper\n" +
		"# example.com/m/q\n./q.go:1:6: can inline T.N\n" +
		"# example.com/other\n./o.go:1:6: can inline X\n"
	got := parseInlinable(out, []string{"example.com/m/p", "example.com/m/q"})
	want := map[string]map[string]bool{
		"example.com/m/p": {"F": true, "(*T).M": true},
		"example.com/m/q": {"T.N": true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
