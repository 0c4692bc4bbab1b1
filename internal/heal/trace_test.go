package heal

import "testing"

func TestCrashSite(t *testing.T) {
	nilMap := `listening on 127.0.0.1:4000
panic: assignment to entry in nil map

goroutine 35 [running]:
main.(*server).tag.func1()
	/tmp/x/main.go:61 +0x45
created by main.(*server).tag in goroutine 34
	/tmp/x/main.go:58 +0x105
exit status 2
`
	index := `panic: runtime error: index out of range [12] with length 3

goroutine 7 [running]:
runtime.goPanicIndex(...)
	/usr/local/go/src/runtime/panic.go:115 +0x33
main.pick(...)
	/src/app/main.go:40 +0x1d
main.worker()
	/src/app/main.go:44 +0x25
`
	fatal := `fatal error: concurrent map writes

goroutine 9 [running]:
internal/runtime/maps.fatal({0x5, 0x1})
	/usr/local/go/src/runtime/panic.go:1046 +0x18
main.handler.func2()
	/src/app/h.go:12 +0x44
`
	tests := []struct{ name, in, want string }{
		{"nil map", nilMap, "panic: assignment to entry in nil map at main.(*server).tag.func1 main.go:61"},
		{"index", index, "panic: runtime error: index out of range [N] with length N at main.pick main.go:40"},
		{"fatal", fatal, "fatal error: concurrent map writes at main.handler.func2 h.go:12"},
		{"none", "killed\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CrashSite([]byte(tt.in)); got != tt.want {
				t.Fatalf("CrashSite = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzCrashSite(f *testing.F) {
	f.Add([]byte("panic: x\n\ngoroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\n"))
	f.Add([]byte("fatal error: y\ngoroutine 1 [running]:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := CrashSite(b)
		if s != "" && !hasGoTrace(b) {
			t.Fatalf("site %q from stderr without a Go trace", s)
		}
	})
}
