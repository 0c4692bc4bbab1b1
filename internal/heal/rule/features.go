package rule

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Input is the part of an HTTP request that features and rules look at. It
// mirrors proxy.Request so that the pure parts of this package do not depend
// on the proxy.
type Input struct {
	ID       uint64 // the proxy's request id; 0 when unknown
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte // possibly only a prefix
	BodyLen  int64  // full length when known, -1 otherwise
}

// Limits on what feature extraction records, so that one request cannot make
// a huge feature set.
const (
	maxValueLen  = 64  // longer values are described by length and kind only
	maxHeaderVal = 128 // headers carry longer constant values (user agents)
	maxJSONPaths = 256 // distinct JSON subjects recorded per body
	maxJSONDepth = 16  // JSON subjects below this depth are not recorded
)

// lenClasses are the boundaries of length classes: a length l falls in
// [lenClasses[i], lenClasses[i+1]-1]; the last class is unbounded.
var lenClasses = []int{0, 1, 8, 16, 64, 256, 1024, 4096, 65536}

// depthClasses are the boundaries of JSON depth classes.
var depthClasses = []int{0, 1, 2, 3, 5, 9, 17, 65}

// class returns the inclusive range [lo, hi] of the class holding n; hi is -1
// for the unbounded last class.
func class(bounds []int, n int) (lo, hi int) {
	i := sort.SearchInts(bounds, n+1) - 1
	if i < 0 {
		i = 0
	}
	if i == len(bounds)-1 {
		return bounds[i], -1
	}
	return bounds[i], bounds[i+1] - 1
}

// kind classifies a value's characters, so that a rule can say "a number"
// or "binary" without naming the value.
func kind(s string) string {
	if s == "" {
		return "empty"
	}
	if !utf8.ValidString(s) {
		return "binary"
	}
	digits, hex, alpha, word, print := true, true, true, true, true
	for i, r := range s {
		isDigit := r >= '0' && r <= '9'
		isLower := r >= 'a' && r <= 'z'
		isUpper := r >= 'A' && r <= 'Z'
		if !isDigit {
			digits = false
		}
		if !isDigit && !(r >= 'a' && r <= 'f') && !(r >= 'A' && r <= 'F') {
			hex = false
		}
		if !isLower && !isUpper {
			alpha = false
		}
		if !isDigit && !isLower && !isUpper && r != '_' && r != '-' && r != '.' {
			word = false
		}
		if r < 0x20 || r == 0x7f {
			print = false
		}
		_ = i
	}
	switch {
	case digits:
		return "digits"
	case alpha:
		return "alpha"
	case hex && len(s) >= 8:
		return "hex"
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return "number"
	}
	switch {
	case word:
		return "word"
	case print:
		return "text"
	}
	return "control"
}

// idSegment reports whether a path segment looks like an identifier, which
// route templates replace by {}.
func idSegment(s string) bool {
	if s == "" {
		return false
	}
	switch kind(s) {
	case "digits", "hex":
		return true
	case "number":
		return true
	}
	if len(s) == 36 && strings.Count(s, "-") == 4 {
		return true // UUID
	}
	if len(s) >= 16 {
		var d, l bool
		for _, r := range s {
			d = d || (r >= '0' && r <= '9')
			l = l || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		}
		return d && l
	}
	return false
}

// Template returns the route template of a URL path: identifier-like
// segments become {}.
func Template(path string) string {
	if !hasDigitOrSyntax(path) {
		return path
	}
	return literalPath(path, true)
}

// AppendTemplate appends Template(path) to dst. The benign sample looks
// requests' routes up with it, from the proxy's bytes, so it allocates
// nothing and decides most segments (words, numbers) in one pass over
// their bytes.
func AppendTemplate[S ~string | ~[]byte](dst []byte, path S) []byte {
	if !hasDigitOrSyntax(path) {
		return append(dst, path...) // as Template: no segment can be an id
	}
	start := 0
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			continue
		}
		if seg := path[start:i]; templated(seg) {
			dst = append(dst, "{}"...)
		} else {
			dst = append(dst, seg...)
		}
		if i < len(path) {
			dst = append(dst, '/')
		}
		start = i + 1
	}
	return dst
}

// hasDigitOrSyntax is strings.ContainsAny(path, "0123456789*{}") in one
// pass without building a set.
func hasDigitOrSyntax[S ~string | ~[]byte](path S) bool {
	for i := 0; i < len(path); i++ {
		if c := path[i]; c >= '0' && c <= '9' || c == '*' || c == '{' || c == '}' {
			return true
		}
	}
	return false
}

// templated reports whether Template writes seg as {}: it holds rule
// syntax (*, {, }) or looks like an identifier.
func templated[S ~string | ~[]byte](seg S) bool {
	digits, signs := 0, 0
	for i := 0; i < len(seg); i++ {
		switch c := seg[i]; {
		case c == '*' || c == '{' || c == '}':
			return true
		case c >= '0' && c <= '9':
			digits++
		case c == '-' || c == '+':
			signs++
		}
	}
	switch {
	case len(seg) == 0:
		return false
	case digits == len(seg):
		return true
	case digits == 0 && signs == 0:
		// Every identifier form but a UUID and a signed Inf or NaN holds
		// a digit, and those hold a - or a +.
		return false
	}
	return idSegment(string(seg))
}

// literalPath makes a request path safe as a rule path: segments that rule
// syntax would read as patterns (holding *, { or }) become {}, and with ids
// set, so do identifier-like segments.
func literalPath(path string, ids bool) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.ContainsAny(s, "*{}") || ids && idSegment(s) {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

// fact is what a request shows about one subject (a query parameter, a
// header, the body, a JSON path). A subject is present when its fact exists.
type fact struct {
	values []string // short values, as text
	lens   []int
	kinds  []string
	types  []string // JSON only
	depth  int      // "json" only: nesting depth
}

func (f *fact) addValue(v string, limit int, withKind bool) {
	if len(v) <= limit {
		f.values = append(f.values, v)
	}
	f.lens = append(f.lens, len(v))
	if withKind {
		f.kinds = append(f.kinds, kind(v))
	}
}

// view computes a request's facts lazily: matching usually needs only a
// header or two, never the JSON walk unless a rule asks about the body.
type view struct {
	in        *Input
	query     url.Values
	queryDone bool
	json      map[string]*fact
	jsonDone  bool
}

func newView(in *Input) *view { return &view{in: in} }

func (v *view) queryValues() url.Values {
	if !v.queryDone {
		v.queryDone = true
		if v.in.RawQuery != "" {
			v.query, _ = url.ParseQuery(v.in.RawQuery)
		}
	}
	return v.query
}

func (v *view) bodyLen() int {
	if v.in.BodyLen >= 0 {
		return int(v.in.BodyLen)
	}
	return len(v.in.Body)
}

// bodyComplete reports whether Body holds the whole body, so JSON facts are
// facts about the real body rather than a prefix.
func (v *view) bodyComplete() bool {
	return v.in.BodyLen < 0 && len(v.in.Body) > 0 || v.in.BodyLen == int64(len(v.in.Body))
}

func (v *view) jsonFacts() map[string]*fact {
	if v.jsonDone {
		return v.json
	}
	v.jsonDone = true
	b := bytes.TrimSpace(v.in.Body)
	if len(b) == 0 || (b[0] != '{' && b[0] != '[') || !v.bodyComplete() {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil || dec.More() {
		return nil
	}
	w := jsonWalker{facts: map[string]*fact{}}
	d := w.walk("json", root, 0)
	w.facts["json"].depth = d
	v.json = w.facts
	return v.json
}

type jsonWalker struct {
	facts map[string]*fact
}

// walk records facts for value at subject and returns its nesting depth.
func (w *jsonWalker) walk(subj string, value any, depth int) int {
	f := w.facts[subj]
	if f == nil {
		if len(w.facts) >= maxJSONPaths || depth > maxJSONDepth {
			f = &fact{} // not recorded, but still walked for depth
		} else {
			f = &fact{}
			w.facts[subj] = f
		}
	}
	switch x := value.(type) {
	case map[string]any:
		f.types = appendUnique(f.types, "object")
		f.lens = append(f.lens, len(x))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // deterministic path budget
		max := 0
		for _, k := range keys {
			if d := w.walk(subj+"."+quoteKey(k), x[k], depth+1); d > max {
				max = d
			}
		}
		return max + 1
	case []any:
		f.types = appendUnique(f.types, "array")
		f.lens = append(f.lens, len(x))
		max := 0
		for _, e := range x {
			if d := w.walk(subj+"[]", e, depth+1); d > max {
				max = d
			}
		}
		return max + 1
	case string:
		f.types = appendUnique(f.types, "string")
		f.addValue(x, maxValueLen, true)
	case json.Number:
		f.types = appendUnique(f.types, "number")
		f.addValue(x.String(), maxValueLen, false)
	case bool:
		f.types = appendUnique(f.types, "bool")
		f.values = append(f.values, strconv.FormatBool(x))
	case nil:
		f.types = appendUnique(f.types, "null")
		f.values = append(f.values, "null")
	}
	return 0
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// quoteKey writes a JSON key as a path segment: bare when it is a plain
// word, Go-quoted otherwise, so paths parse back unambiguously.
func quoteKey(k string) string {
	if isBare(k) && !strings.ContainsAny(k, ".[]") {
		return k
	}
	return strconv.Quote(k)
}

// isBare reports whether s can be written in rule text without quotes.
func isBare(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("_-./:@+~,*{}[]", r)
		if !ok {
			return false
		}
	}
	return true
}

// fact returns the facts of one subject, nil when the subject is absent.
func (v *view) fact(src source, name string) *fact {
	switch src {
	case srcQuery:
		vals, ok := v.queryValues()[name]
		if !ok {
			return nil
		}
		f := &fact{}
		for _, x := range vals {
			f.addValue(x, maxValueLen, true)
		}
		return f
	case srcHeader:
		vals, ok := v.in.Header[name]
		if !ok {
			return nil
		}
		f := &fact{}
		for _, x := range vals {
			f.addValue(x, headerValueLimit(name), true)
		}
		return f
	case srcBody:
		n := v.bodyLen()
		return &fact{lens: []int{n}}
	case srcJSON:
		return v.jsonFacts()[name]
	}
	return nil
}

// headerValueLimit is 0 for headers whose exact value says nothing about
// the request's content and changes from one request to the next.
func headerValueLimit(name string) int {
	switch name {
	case "Content-Length", "X-Forwarded-For", "Forwarded", "X-Real-Ip", "Date":
		return -1
	}
	return maxHeaderVal
}

// Features returns every predicate that holds for in, in canonical text, as
// a sorted set. A rule whose predicates are a subset of a request's features
// matches it; the narrowest rule matching several requests is the
// intersection of their features.
func Features(in *Input) []string {
	ps := featurePreds(in)
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	sort.Strings(out)
	return dedup(out)
}

func featurePreds(in *Input) []pred {
	v := newView(in)
	var out []pred
	for name := range v.queryValues() {
		out = append(out, factPreds(srcQuery, name, v.fact(srcQuery, name))...)
	}
	for name := range in.Header {
		out = append(out, factPreds(srcHeader, name, v.fact(srcHeader, name))...)
	}
	out = append(out, factPreds(srcBody, "", v.fact(srcBody, ""))...)
	for name, f := range v.jsonFacts() {
		out = append(out, factPreds(srcJSON, name, f)...)
	}
	return out
}

// factPreds lists the predicates that a fact makes true.
func factPreds(src source, name string, f *fact) []pred {
	var ps []pred
	base := pred{src: src, name: name}
	if src != srcBody {
		p := base
		p.op = opPresent
		ps = append(ps, p)
	}
	ps = appendValued(ps, base, opEqual, f.values)
	for _, l := range f.lens {
		p := base
		p.op = opLen
		p.lo, p.hi = class(lenClasses, l)
		ps = append(ps, p)
	}
	ps = appendValued(ps, base, opKind, f.kinds)
	ps = appendValued(ps, base, opType, f.types)
	if src == srcJSON && name == "json" {
		p := base
		p.op = opDepth
		p.lo, p.hi = class(depthClasses, f.depth)
		ps = append(ps, p)
	}
	return ps
}

// appendValued appends one predicate op=v on base's subject per value.
func appendValued(ps []pred, base pred, op op, values []string) []pred {
	for _, v := range values {
		p := base
		p.op, p.value = op, v
		ps = append(ps, p)
	}
	return ps
}

func dedup(s []string) []string {
	if len(s) < 2 {
		return s
	}
	out := s[:1]
	for _, x := range s[1:] {
		if x != out[len(out)-1] {
			out = append(out, x)
		}
	}
	return out
}
