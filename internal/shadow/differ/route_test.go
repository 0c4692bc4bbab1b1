package differ

import (
	"fmt"
	"strings"
	"testing"
)

func TestRouterIdentifiers(t *testing.T) {
	r, err := NewRouter(RouterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path, want string
	}{
		{"GET", "/users/123", "GET /users/{id}"},
		{"GET", "/users/456", "GET /users/{id}"},
		{"GET", "/users/123/posts/9", "GET /users/{id}/posts/{id}"},
		{"DELETE", "/users/123", "DELETE /users/{id}"},
		{"GET", "/items/0b6d4f9e-3f0a-4c1e-9a57-1d2e3f4a5b6c", "GET /items/{id}"},
		{"GET", "/blobs/deadbeef42", "GET /blobs/{id}"},
		{"GET", "/blobs/deadbeef", "GET /blobs/deadbeef"}, // a word made of hex letters
		{"GET", "/t/01ARZ3NDEKTSV4RRFFQ69G5FAV", "GET /t/{id}"},
		{"GET", "/users", "GET /users"},
		{"GET", "/users/", "GET /users/"},
		{"GET", "/", "GET /"},
		{"GET", "", "GET /"},
		{"GET", "/v2/users/me", "GET /v2/users/me"},
		{"GET", "/api/facade/cafe", "GET /api/facade/cafe"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			if got := r.Route(tt.method, tt.path); got != tt.want {
				t.Errorf("Route(%s %s) = %q, want %q", tt.method, tt.path, got, tt.want)
			}
		})
	}
}

func TestRouterHighCardinality(t *testing.T) {
	r, _ := NewRouter(RouterOptions{MaxChildren: 4})
	early := r.Route("GET", "/files/alpha/raw")
	if early != "GET /files/alpha/raw" {
		t.Fatalf("first route = %q", early)
	}
	r.Route("GET", "/files/index")
	for _, name := range []string{"beta", "gamma", "delta", "epsilon"} {
		r.Route("GET", "/files/"+name+"/raw")
	}
	if got := r.Route("GET", "/files/zeta/raw"); got != "GET /files/{param}/raw" {
		t.Errorf("after collapse = %q, want GET /files/{param}/raw", got)
	}
	if got := r.Template(early); got != "GET /files/{param}/raw" {
		t.Errorf("Template(early) = %q, want GET /files/{param}/raw", got)
	}
	if got := r.Template("GET /files/index"); got != "GET /files/{param}" {
		t.Errorf("Template(/files/index) = %q", got)
	}
	// A few distinct siblings elsewhere stay literal.
	if got := r.Route("GET", "/health"); got != "GET /health" {
		t.Errorf("Route(/health) = %q", got)
	}
}

func TestRouterPatterns(t *testing.T) {
	r, err := NewRouter(RouterOptions{Patterns: []string{"GET /users/{name}", "/static/{path...}", "/orgs/{org}/repos/{repo}"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ method, path, want string }{
		{"GET", "/users/ada", "GET /users/{name}"},
		{"POST", "/users/ada", "POST /users/ada"},
		{"GET", "/static/css/site.css", "GET /static/{path...}"},
		{"HEAD", "/orgs/go/repos/tools", "HEAD /orgs/{org}/repos/{repo}"},
		{"GET", "/orgs/go/repos", "GET /orgs/go/repos"},
	}
	for _, tt := range tests {
		if got := r.Route(tt.method, tt.path); got != tt.want {
			t.Errorf("Route(%s %s) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
		if got := r.Template(tt.want); got != tt.want {
			t.Errorf("Template(%q) = %q, not stable", tt.want, got)
		}
	}
	for _, bad := range []string{"users/x", "/a/{b...}/c"} {
		if _, err := NewRouter(RouterOptions{Patterns: []string{bad}}); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

func TestRouterBounded(t *testing.T) {
	r, _ := NewRouter(RouterOptions{MaxChildren: 8, MaxNodes: 100})
	for i := range 5000 {
		r.Route("GET", fmt.Sprintf("/a%d/b%d/c%d", i%50, i%97, i))
	}
	r.mu.Lock()
	n := count(r.root) - 1
	r.mu.Unlock()
	if n > 200 {
		t.Errorf("router holds %d nodes after 5000 distinct paths, want a bounded number", n)
	}
}

func FuzzRouteTemplate(f *testing.F) {
	f.Add("GET", "/users/123\n/users/x/a\n/users/y/b\n/users/z/a\n/users/w")
	f.Add("GET", "/a/b/c\n/\n\n//x//")
	f.Add("POST", "/{id}/x\n/files/{param}\n/"+strings.Repeat("a/", 40))
	f.Fuzz(func(t *testing.T, method, paths string) {
		if strings.Contains(method, " ") {
			return
		}
		r, _ := NewRouter(RouterOptions{MaxChildren: 3})
		var got []string
		for _, p := range strings.Split(paths, "\n") {
			g := r.Route(method, p)
			if !strings.HasPrefix(g, method+" /") {
				t.Fatalf("Route(%q, %q) = %q, want method and a path", method, p, g)
			}
			if again := r.Template(g); again != g {
				t.Fatalf("Template(Route(%q)) = %q, want %q", p, again, g)
			}
			got = append(got, g)
		}
		// Re-templating is idempotent: what Template gives, it gives again.
		for _, g := range got {
			once := r.Template(g)
			if twice := r.Template(once); twice != once {
				t.Fatalf("Template(%q) = %q, then %q: not idempotent", g, once, twice)
			}
		}
	})
}
