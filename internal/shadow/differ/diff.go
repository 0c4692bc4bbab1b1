package differ

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Answer is one HTTP answer as compared: the primary's, the secondary's or
// the candidate's.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
	// Truncated says Body holds only the first bytes of the answer's body
	// (the body cap); such bodies are compared as bytes, never as JSON.
	Truncated bool
	// Err is set when the lane gave no answer (refused, reset, timed out);
	// Status is then 0.
	Err error
}

// DefaultIgnoredHeaders are never compared. Date and Expires, Age and
// Last-Modified follow the clock, not the code; Content-Length follows the
// body, whose difference is reported field by field instead; Connection,
// Keep-Alive, Transfer-Encoding, Proxy-Connection, Trailer and Upgrade are
// hop-by-hop, chosen by the transport (the primary's answer went through
// graft's proxy, the lanes' did not).
var DefaultIgnoredHeaders = []string{
	"Date", "Expires", "Age", "Last-Modified", "Content-Length",
	"Connection", "Keep-Alive", "Transfer-Encoding", "Proxy-Connection", "Trailer", "Upgrade",
}

// CompareOptions configures a Comparer; the zero value works.
type CompareOptions struct {
	// IgnoreHeaders are ignored in addition to DefaultIgnoredHeaders.
	IgnoreHeaders []string
	// IgnoreFields are field paths never reported, with everything below
	// them ("body.meta" ignores "body.meta.took" too).
	IgnoreFields []string
	// MaxPaths bounds the paths one comparison reports; 0 means 256.
	MaxPaths int
}

// Comparer compares answers field by field. It is safe for concurrent use.
type Comparer struct {
	ignoreHeaders map[string]bool
	ignoreFields  []string
	maxPaths      int
}

// NewComparer returns a Comparer configured by opts.
func NewComparer(opts CompareOptions) *Comparer {
	c := &Comparer{ignoreHeaders: map[string]bool{}, ignoreFields: opts.IgnoreFields, maxPaths: opts.MaxPaths}
	for _, h := range DefaultIgnoredHeaders {
		c.ignoreHeaders[http.CanonicalHeaderKey(h)] = true
	}
	for _, h := range opts.IgnoreHeaders {
		c.ignoreHeaders[http.CanonicalHeaderKey(h)] = true
	}
	if c.maxPaths <= 0 {
		c.maxPaths = 256
	}
	return c
}

// parsed is an Answer prepared once for comparison against two others.
type parsed struct {
	a      *Answer
	body   []byte // decoded (gunzipped) body
	isJSON bool
	json   any
}

func (c *Comparer) parse(a *Answer) *parsed {
	p := &parsed{a: a, body: a.Body}
	if a.Err != nil {
		return p
	}
	if !a.Truncated && strings.EqualFold(a.Header.Get("Content-Encoding"), "gzip") {
		if zr, err := gzip.NewReader(bytes.NewReader(a.Body)); err == nil {
			if b, err := io.ReadAll(io.LimitReader(zr, 8<<20)); err == nil {
				p.body = b
			}
		}
	}
	if !a.Truncated && looksJSON(a.Header.Get("Content-Type"), p.body) {
		if v, ok := decodeJSON(p.body); ok {
			p.isJSON, p.json = true, v
		}
	}
	return p
}

func looksJSON(contentType string, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		if mt == "application/json" || strings.HasSuffix(mt, "+json") {
			return true
		}
	}
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// Diff returns the sorted field paths in which a and b differ.
func (c *Comparer) Diff(a, b *Answer) []string {
	return c.diff(c.parse(a), c.parse(b))
}

// Outcome compares the primary's answer with the secondary's and the
// candidate's. The answers are kept in the outcome only when the candidate
// alone differs in some field, each body cut to exampleBody bytes (≤ 0: not
// cut): Record may then keep them as an example.
func (c *Comparer) Outcome(primary, secondary, candidate *Answer, exampleBody int) Outcome {
	noise, diffs := c.diff3(primary, secondary, candidate)
	o := Outcome{Noise: noise, Diffs: diffs}
	if o.CandidateOnly() {
		o.Primary, o.Secondary, o.Candidate = Cut(primary, exampleBody), Cut(secondary, exampleBody), Cut(candidate, exampleBody)
	}
	return o
}

// Cut returns a with its body cut to n bytes (marked Truncated), or a
// itself when it is no longer (or n ≤ 0).
func Cut(a *Answer, n int) *Answer {
	if a == nil || n <= 0 || len(a.Body) <= n {
		return a
	}
	b := *a
	b.Body, b.Truncated = a.Body[:n:n], true
	return &b
}

// diff3 compares the primary with the secondary and with the candidate,
// parsing the primary once.
func (c *Comparer) diff3(primary, secondary, candidate *Answer) (noise, diffs []string) {
	p := c.parse(primary)
	return c.diff(p, c.parse(secondary)), c.diff(p, c.parse(candidate))
}

type collector struct {
	c     *Comparer
	paths []string
}

func (k *collector) add(path string) {
	if len(k.paths) >= k.c.maxPaths {
		return
	}
	for _, f := range k.c.ignoreFields {
		if path == f || strings.HasPrefix(path, f) && (path[len(f)] == '.' || path[len(f)] == '[') {
			return
		}
	}
	k.paths = append(k.paths, path)
}

func (k *collector) full() bool { return len(k.paths) >= k.c.maxPaths }

func (c *Comparer) diff(a, b *parsed) []string {
	k := &collector{c: c}
	if (a.a.Err != nil) != (b.a.Err != nil) {
		// One lane failed to answer: nothing else of it can be compared.
		k.add("status")
		return k.paths
	}
	if a.a.Err != nil {
		return nil
	}
	if a.a.Status != b.a.Status {
		k.add("status")
	}
	c.diffHeaders(k, a.a.Header, b.a.Header)
	switch {
	case a.isJSON && b.isJSON:
		diffJSON(k, &step{key: "body", index: -1}, a.json, b.json)
	case a.isJSON != b.isJSON:
		k.add("body")
	case !bytes.Equal(a.body, b.body):
		k.add("body")
	}
	slices.Sort(k.paths)
	return k.paths
}

func (c *Comparer) diffHeaders(k *collector, a, b http.Header) {
	seen := map[string]bool{}
	check := func(h http.Header) {
		for name := range h {
			key := http.CanonicalHeaderKey(name)
			if seen[key] || c.ignoreHeaders[key] {
				continue
			}
			seen[key] = true
			if strings.Join(a.Values(key), ", ") != strings.Join(b.Values(key), ", ") || (len(a.Values(key)) == 0) != (len(b.Values(key)) == 0) {
				k.add("header." + key)
			}
		}
	}
	check(a)
	check(b)
}

// step is one step of a field path, built on the stack as diffJSON
// descends and turned into a string only when a difference is found.
type step struct {
	parent *step
	key    string
	index  int // ≥ 0: an array index; else key is an object key (or the root's name)
}

func (p *step) String() string {
	var steps []*step
	for q := p; q != nil; q = q.parent {
		steps = append(steps, q)
	}
	var b strings.Builder
	for i := len(steps) - 1; i >= 0; i-- {
		q := steps[i]
		switch {
		case q.parent == nil:
			b.WriteString(q.key)
		case q.index >= 0:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(q.index))
			b.WriteByte(']')
		default:
			b.WriteString(keyPath(q.key))
		}
	}
	return b.String()
}

// diffJSON compares decoded JSON values: objects by key, arrays by index,
// numbers by value; a value whose type differs is one difference at its path.
func diffJSON(k *collector, path *step, a, b any) {
	if k.full() {
		return
	}
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			k.add(path.String())
			return
		}
		keys := make([]string, 0, len(av)+len(bv))
		for key := range av {
			keys = append(keys, key)
		}
		for key := range bv {
			if _, ok := av[key]; !ok {
				keys = append(keys, key)
			}
		}
		slices.Sort(keys)
		for _, key := range keys {
			x, okA := av[key]
			y, okB := bv[key]
			sub := step{parent: path, key: key, index: -1}
			if okA != okB {
				k.add(sub.String())
				continue
			}
			diffJSON(k, &sub, x, y)
		}
	case []any:
		bv, ok := b.([]any)
		if !ok {
			k.add(path.String())
			return
		}
		for i := 0; i < max(len(av), len(bv)); i++ {
			sub := step{parent: path, index: i}
			if i >= len(av) || i >= len(bv) {
				k.add(sub.String())
				continue
			}
			diffJSON(k, &sub, av[i], bv[i])
		}
	case json.Number:
		bv, ok := b.(json.Number)
		if !ok || !numbersEqual(av, bv) {
			k.add(path.String())
		}
	default: // string, bool, nil
		if !sameScalar(a, b) {
			k.add(path.String())
		}
	}
}

func sameScalar(a, b any) bool {
	switch av := a.(type) {
	case string:
		bv, ok := b.(string)
		return ok && av == bv
	case bool:
		bv, ok := b.(bool)
		return ok && av == bv
	case nil:
		return b == nil
	}
	return false
}

func numbersEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, errA := strconv.ParseFloat(string(a), 64)
	y, errB := strconv.ParseFloat(string(b), 64)
	return errA == nil && errB == nil && x == y
}

// keyPath renders an object key as a path step: ".name" for plain keys,
// `["odd key"]` for the rest, so that paths stay unambiguous.
func keyPath(key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return "." + key
	}
	return "[" + strconv.Quote(key) + "]"
}
