package differ

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net/http"
	"slices"
	"testing"
)

func jsonAnswer(status int, body string) *Answer {
	return &Answer{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

func TestComparerDiff(t *testing.T) {
	base := `{"id":7,"name":"ada","tags":["a","b"],"score":1.5,"ok":true,"meta":{"n":null}}`
	tests := []struct {
		name string
		a, b *Answer
		opts CompareOptions
		want []string
	}{
		{name: "equal", a: jsonAnswer(200, base), b: jsonAnswer(200, base), want: nil},
		{name: "key order and whitespace", a: jsonAnswer(200, base),
			b: jsonAnswer(200, `{ "meta":{"n":null},"ok":true,"score":1.50,"tags":["a","b"],"name":"ada","id":7.0 }`), want: nil},
		{name: "changed value", a: jsonAnswer(200, base),
			b: jsonAnswer(200, `{"id":7,"name":"bob","tags":["a","b"],"score":1.5,"ok":true,"meta":{"n":null}}`), want: []string{"body.name"}},
		{name: "changed number", a: jsonAnswer(200, base),
			b: jsonAnswer(200, `{"id":8,"name":"ada","tags":["a","b"],"score":1.5,"ok":true,"meta":{"n":null}}`), want: []string{"body.id"}},
		{name: "missing field", a: jsonAnswer(200, base),
			b: jsonAnswer(200, `{"id":7,"tags":["a","b"],"score":1.5,"ok":true,"meta":{"n":null}}`), want: []string{"body.name"}},
		{name: "added nested field", a: jsonAnswer(200, base),
			b: jsonAnswer(200, `{"id":7,"name":"ada","tags":["a","b"],"score":1.5,"ok":true,"meta":{"n":null,"x":1}}`), want: []string{"body.meta.x"}},
		{name: "type change", a: jsonAnswer(200, base),
			b: jsonAnswer(200, `{"id":"7","name":"ada","tags":["a","b"],"score":1.5,"ok":true,"meta":{"n":null}}`), want: []string{"body.id"}},
		{name: "object becomes array", a: jsonAnswer(200, base),
			b: jsonAnswer(200, `{"id":7,"name":"ada","tags":["a","b"],"score":1.5,"ok":true,"meta":[]}`), want: []string{"body.meta"}},
		{name: "array by index", a: jsonAnswer(200, base),
			b: jsonAnswer(200, `{"id":7,"name":"ada","tags":["b","a","c"],"score":1.5,"ok":true,"meta":{"n":null}}`), want: []string{"body.tags[0]", "body.tags[1]", "body.tags[2]"}},
		{name: "null vs false", a: jsonAnswer(200, `{"x":null}`), b: jsonAnswer(200, `{"x":false}`), want: []string{"body.x"}},
		{name: "odd keys quoted", a: jsonAnswer(200, `{"a.b":1,"":2}`), b: jsonAnswer(200, `{"a.b":2,"":3}`), want: []string{`body[""]`, `body["a.b"]`}},
		{name: "status change", a: jsonAnswer(200, base), b: jsonAnswer(500, base), want: []string{"status"}},
		{name: "header change", a: &Answer{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("x")},
			b: &Answer{Status: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: []byte("x")}, want: []string{"header.Content-Type"}},
		{name: "header added", a: &Answer{Status: 200, Header: http.Header{}, Body: []byte("x")},
			b: &Answer{Status: 200, Header: http.Header{"X-Extra": {""}}, Body: []byte("x")}, want: []string{"header.X-Extra"}},
		{name: "default ignored headers", a: &Answer{Status: 200, Header: http.Header{"Date": {"Mon"}, "Content-Length": {"1"}, "Connection": {"close"}}, Body: []byte("x")},
			b: &Answer{Status: 200, Header: http.Header{"Date": {"Tue"}, "Content-Length": {"2"}}, Body: []byte("x")}, want: nil},
		{name: "configured ignored header", opts: CompareOptions{IgnoreHeaders: []string{"x-request-id"}},
			a: &Answer{Status: 200, Header: http.Header{"X-Request-Id": {"1"}}}, b: &Answer{Status: 200, Header: http.Header{"X-Request-Id": {"2"}}}, want: nil},
		{name: "ignored field subtree", opts: CompareOptions{IgnoreFields: []string{"body.meta"}},
			a: jsonAnswer(200, `{"meta":{"t":1},"metadata":1}`), b: jsonAnswer(200, `{"meta":{"t":2},"metadata":2}`), want: []string{"body.metadata"}},
		{name: "text body bytes", a: &Answer{Status: 200, Body: []byte("hello")}, b: &Answer{Status: 200, Body: []byte("hellO")}, want: []string{"body"}},
		{name: "json vs text", a: jsonAnswer(200, `{"a":1}`), b: jsonAnswer(200, `{"a":1`), want: []string{"body"}},
		{name: "trailing garbage is not json", a: jsonAnswer(200, `{"a":1} x`), b: jsonAnswer(200, `{"a":1}  x`), want: []string{"body"}},
		{name: "truncated compared as bytes", a: &Answer{Status: 200, Body: []byte(`{"a":1,"b"`), Truncated: true}, b: &Answer{Status: 200, Body: []byte(`{"b":2,"a"`), Truncated: true}, want: []string{"body"}},
		{name: "lane error", a: jsonAnswer(200, base), b: &Answer{Err: errors.New("refused")}, want: []string{"status"}},
		{name: "both errors", a: &Answer{Err: errors.New("x")}, b: &Answer{Err: errors.New("y")}, want: nil},
		{name: "max paths", opts: CompareOptions{MaxPaths: 2}, a: jsonAnswer(200, `[1,2,3,4]`), b: jsonAnswer(200, `[5,6,7,8]`), want: []string{"body[0]", "body[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewComparer(tt.opts).Diff(tt.a, tt.b)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Diff = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestComparerGzip(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	h := http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}
	a := &Answer{Status: 200, Header: h, Body: gz(`{"a":1,"b":2}`)}
	b := &Answer{Status: 200, Header: h, Body: gz(`{"b":2,"a":3}`)}
	if got := NewComparer(CompareOptions{}).Diff(a, b); !slices.Equal(got, []string{"body.a"}) {
		t.Errorf("Diff of gzipped JSON = %q, want [body.a]", got)
	}
}

func FuzzJSONDiff(f *testing.F) {
	f.Add(`{"a":1}`, `{"a":2}`)
	f.Add(`[1,2,{"x":[null,true]}]`, `[1,2,{"x":[null,false]}]`)
	f.Add(`{"a":{"b":{"c":"d"}}}`, `{"a":{"b":[]}}`)
	f.Add(`1e3`, `1000`)
	f.Add(`{"":{}}`, `{"\u0000":[]}`)
	c := NewComparer(CompareOptions{})
	f.Fuzz(func(t *testing.T, x, y string) {
		a, b := jsonAnswer(200, x), jsonAnswer(200, y)
		if d := c.Diff(a, a); len(d) != 0 {
			t.Fatalf("Diff(x, x) = %q, want none", d)
		}
		ab, ba := c.Diff(a, b), c.Diff(b, a)
		if !slices.Equal(ab, ba) {
			t.Fatalf("Diff not symmetric: %q vs %q", ab, ba)
		}
		if !slices.IsSorted(ab) {
			t.Fatalf("Diff not sorted: %q", ab)
		}
		if _, okX := decodeJSON([]byte(x)); okX && x != y && len(ab) == 0 {
			// Equal by value must survive a re-encode of one side.
			if _, okY := decodeJSON([]byte(y)); !okY && looksJSON("application/json", []byte(y)) {
				t.Fatalf("JSON %q and non-JSON %q compared equal", x, y)
			}
		}
	})
}
