package instrument

import (
	"fmt"
	"testing"
)

func TestParseFacts(t *testing.T) {
	out := "# example.com/m/p\n./p.go:3:6: can inline F\n./p.go:5:6: can inline (*T).M with cost 12 as: method(t *T) int { return t.n }\n./p.go:9:10: inlining call to F\n" +
		"./p.go:7:15: leaking param: x\n./p.go:7:26: leaking param: s to result ~r0 level=0\n./p.go:7:30: leaking param content: c\n./p.go:7:7: t does not escape\n" +
		"# example.com/m/p [example.com/m/p.test]\n./p_test.go:3:6: can inline helper\n" +
		"# example.com/m/q\n./q.go:1:6: can inline T.N\n" +
		"# example.com/other\n./o.go:1:6: can inline X\n"
	got := parseFacts(out, []string{"example.com/m/p", "example.com/m/q"})
	want := map[string]*pkgFacts{
		"example.com/m/p": {Inlinable: map[string]bool{"F": true, "(*T).M": true}, Leaking: map[string]bool{"p.go:7:15": true}},
		"example.com/m/q": {Inlinable: map[string]bool{"T.N": true}, Leaking: map[string]bool{}},
	}
	for path, w := range want {
		if g := got[path]; g == nil || fmt.Sprint(*g) != fmt.Sprint(*w) {
			t.Errorf("%s: got %+v, want %+v", path, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got packages %v", got)
	}
}
