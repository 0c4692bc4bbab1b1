package rule

import "testing"

// AppendTemplate is the allocation-free form of Template the benign sample
// looks routes up with, over strings and the proxy's bytes; they must all
// agree or the sample splits a route.
func TestAppendTemplateAgreesWithTemplate(t *testing.T) {
	for _, path := range []string{
		"", "/", "/items", "/items/", "/items/42", "/items/42/tags", "//x//7/",
		"/a*b/{c}/d", "/u/0f1e2d3c4b5a6978", "/u/123e4567-e89b-12d3-a456-426614174000",
		"/v1/users/abc123def456ghi789/x", "/p/3.14", "/files/report.pdf", "/x/%41",
		"/a/+Inf/1", "/-nan/2", "/+Inf", "/v2/-/x", "/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/7",
	} {
		t.Run(path, func(t *testing.T) {
			if got, want := string(AppendTemplate([]byte("junk"), path)[4:]), Template(path); got != want {
				t.Errorf("AppendTemplate(%q) = %q, Template = %q", path, got, want)
			}
			if got, want := string(AppendTemplate([]byte("junk"), []byte(path))[4:]), Template(path); got != want {
				t.Errorf("AppendTemplate([]byte(%q)) = %q, Template = %q", path, got, want)
			}
		})
	}
}

func FuzzAppendTemplate(f *testing.F) {
	for _, s := range []string{"/items/42", "/a/{b}/*", "", "/x//9", "/a/+Inf/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		want := Template(path)
		if got := string(AppendTemplate(nil, path)); got != want {
			t.Errorf("AppendTemplate(%q) = %q, Template = %q", path, got, want)
		}
		if got := string(AppendTemplate(nil, []byte(path))); got != want {
			t.Errorf("AppendTemplate([]byte(%q)) = %q, Template = %q", path, got, want)
		}
	})
}
