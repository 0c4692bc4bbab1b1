package differ_test

import (
	"fmt"
	"net/http"

	"github.com/graftdev/graft/internal/shadow/differ"
)

func ExampleComparer_Diff() {
	h := http.Header{"Content-Type": {"application/json"}}
	old := &differ.Answer{Status: 200, Header: h, Body: []byte(`{"id":7,"name":"ada","tags":["a"],"at":"12:00"}`)}
	new := &differ.Answer{Status: 200, Header: h, Body: []byte(`{"at":"12:01","tags":["a","b"],"id":"7"}`)}
	fmt.Println(differ.NewComparer(differ.CompareOptions{}).Diff(old, new))
	// Output: [body.at body.id body.name body.tags[1]]
}

func ExampleRouter_Route() {
	r, _ := differ.NewRouter(differ.RouterOptions{Patterns: []string{"GET /users/{name}/repos"}})
	fmt.Println(r.Route("GET", "/orders/123/items/0b6d4f9e-3f0a-4c1e-9a57-1d2e3f4a5b6c"))
	fmt.Println(r.Route("GET", "/users/ada/repos"))
	// Output:
	// GET /orders/{id}/items/{id}
	// GET /users/{name}/repos
}
