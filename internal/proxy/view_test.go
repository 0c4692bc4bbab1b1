package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestView sends requests of several target forms through a proxy whose
// hooks are Admit and Complete, and checks that what a View says without a
// copy (ID, method, path, generation) agrees with the copy Request makes,
// that Request is made at most once per hook phase, and that a request no
// hook asks about is never copied for Complete.
func TestView(t *testing.T) {
	addr, p, _ := rawProxy(t, echoHandler(1))
	type seen struct {
		id         uint64
		method     string
		path       string
		gen        int
		req        *Request // nil when the hook did not ask
		again      bool     // a second Request call returned the same copy
		status     int
		copiedLate bool // the view had a copy before the hook asked
	}
	admits, completes := make(chan seen, 1), make(chan seen, 1)
	look := func(v *View, ask bool) seen {
		s := seen{id: v.ID(), method: v.Method(), path: string(v.AppendPath([]byte("x"))[1:]), gen: v.Gen()}
		if ask {
			s.req = v.Request()
			s.again = v.Request() == s.req
		}
		return s
	}
	p.SetHooks(Hooks{
		Admit: func(v *View) *Answer {
			copied := v.x.insp != nil
			s := look(v, strings.Contains(string(v.AppendPath(nil)), "ask"))
			s.copiedLate = copied
			admits <- s
			return nil
		},
		Complete: func(v *View, resp *Response) {
			copied := v.x.done != nil
			s := look(v, strings.Contains(string(v.AppendPath(nil)), "ask"))
			s.status, s.copiedLate = resp.Status, copied
			completes <- s
		},
	})
	tests := []struct {
		name, method, target, wantPath string
	}{
		{"plain", "GET", "/items/42", "/items/42"},
		{"query", "GET", "/items/42?page=2&q=a%20b", "/items/42"},
		{"escaped", "POST", "/a%20b/c?x=1", "/a b/c"},
		{"absolute", "PUT", "http://example.test/abs/p?q=1", "/abs/p"},
		{"uncommon method", "PURGE", "/cache/k", "/cache/k"},
		{"asked", "GET", "/ask/7?z=1", "/ask/7"},
		{"asked escaped", "DELETE", "/ask%2Fx/7", "/ask/x/7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dialRaw(t, addr)
			fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", tt.method, tt.target)
			resp, _ := readResp(t, br, tt.method)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			// One request at a time: the next Admit and Complete are its.
			a, d := receive(t, admits), receive(t, completes)
			if a.method != tt.method || a.path != tt.wantPath || a.gen != 0 {
				t.Fatalf("Admit saw %+v, want %s %s gen 0", a, tt.method, tt.wantPath)
			}
			if d.id != a.id || d.method != tt.method || d.path != tt.wantPath || d.gen != 1 || d.status != http.StatusOK {
				t.Fatalf("Complete saw %+v, want id %d, %s %s gen 1 status 200", d, a.id, tt.method, tt.wantPath)
			}
			asked := strings.Contains(tt.wantPath, "ask")
			if (a.req != nil) != asked || (d.req != nil) != asked {
				t.Fatalf("copies made: admit %v complete %v, want %v", a.req != nil, d.req != nil, asked)
			}
			if a.copiedLate || d.copiedLate {
				t.Fatalf("a copy was made before a hook asked for it (Admit %v, Complete %v)", a.copiedLate, d.copiedLate)
			}
			if !asked {
				return
			}
			if !a.again || !d.again {
				t.Fatal("a second Request call made another copy")
			}
			if a.req.ID != a.id || a.req.Method != tt.method || a.req.Path != tt.wantPath || a.req.Gen != 0 {
				t.Fatalf("Admit's copy %+v", a.req)
			}
			if d.req.ID != a.id || d.req.Path != tt.wantPath || d.req.Gen != 1 || d.req == a.req {
				t.Fatalf("Complete's copy %+v (Admit's %p, Complete's %p)", d.req, a.req, d.req)
			}
		})
	}
	if st := p.Stats(); st.Inspected != uint64(len(tests)) {
		t.Fatalf("Inspected = %d, want %d", st.Inspected, len(tests))
	}
}

func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("hook not called")
		panic("unreachable")
	}
}
