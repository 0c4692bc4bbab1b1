package differ

import (
	"fmt"
	"testing"
)

// BenchmarkDifferAdd is the comparison of one request's three JSON answers
// (off the primary path, in the shadow's workers).
func BenchmarkDifferAdd(b *testing.B) {
	d, _ := New(Options{})
	p := jsonAnswer(200, `{"id":42,"name":"ada","plan":"free","at":"2026-11-29T12:00:00.1Z","req":"a1b2c3","tags":["x","y"],"n":{"a":1,"b":2}}`)
	s := jsonAnswer(200, `{"id":42,"name":"ada","plan":"free","at":"2026-11-29T12:00:00.2Z","req":"d4e5f6","tags":["x","y"],"n":{"b":2,"a":1}}`)
	c := jsonAnswer(200, `{"id":42,"name":"ada","plan":"pro","at":"2026-11-29T12:00:00.3Z","req":"a7b8c9","tags":["x","y"],"n":{"a":1,"b":2}}`)
	for b.Loop() {
		d.Add("GET", "/users/42", "", p, s, c)
	}
}

// BenchmarkJudge is a verdict check late in a long run: 20 routes with 8
// fields each, 100,000 compared requests, noisy fields near 50/50.
func BenchmarkJudge(b *testing.B) {
	d, _ := New(Options{})
	for r := range 20 {
		rs := &routeStats{compared: 100000, fields: map[string]*fieldStats{}}
		for f := range 8 {
			rs.fields[fmt.Sprintf("body.f%d", f)] = &fieldStats{diffs: 50000, noise: 50000, candOnly: 25100, secOnly: 24900}
		}
		d.routes[fmt.Sprintf("GET /r%d/{id}", r)] = rs
	}
	for b.Loop() {
		d.Judge()
	}
}
