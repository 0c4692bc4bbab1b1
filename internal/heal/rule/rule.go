// Package rule is the language of seal rules: the features of an HTTP
// request, rule text (parsing, canonical form, evaluation), a Set that finds
// the first of many rules matching a request, and the derivation of the
// narrowest rule that matches crashing requests and spares benign ones. It
// is pure: no processes, no proxy, no clock of its own.
package rule

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// Rule syntax (docs/heal.md has the reference):
//
//	METHOD PATH [PREDICATE]...
//
// METHOD is an HTTP method or *. PATH is an exact path, a template whose {}
// (or {name}) segments match one segment each, or ends in /* to match any
// rest; * alone matches every path. Predicates, all of which must hold:
//
//	SUBJECT                 present
//	!SUBJECT                absent
//	SUBJECT=VALUE           some value equals VALUE
//	len(SUBJECT)=LO..HI     some value's length in [LO, HI]; HI may be empty
//	kind(SUBJECT)=KIND      some value is of KIND (digits, alpha, hex, number,
//	                        word, text, control, binary, empty)
//	type(SUBJECT)=TYPE      JSON type (object, array, string, number, bool, null)
//	depth(json)=LO..HI      JSON nesting depth
//
// SUBJECT is query.NAME, header.NAME, body (only in len()), json (the whole
// JSON body) or json.KEY.KEY with [] for "any element", e.g. json.items[].id.
// VALUE and NAME are bare words or Go-quoted strings.

type source uint8

const (
	srcQuery source = iota + 1
	srcHeader
	srcBody
	srcJSON
)

type op uint8

const (
	opPresent op = iota + 1
	opAbsent
	opEqual
	opLen
	opKind
	opType
	opDepth
)

// pred is one predicate of a rule.
type pred struct {
	src    source
	name   string // query/header name, JSON subject ("json", "json.a[]"); "" for body
	op     op
	value  string
	lo, hi int // len and depth ranges; hi -1 is unbounded
}

func (p pred) subject() string {
	switch p.src {
	case srcQuery:
		return "query." + quoteName(p.name)
	case srcHeader:
		return "header." + quoteName(p.name)
	case srcBody:
		return "body"
	}
	return p.name
}

func quoteName(s string) string {
	if isBare(s) {
		return s
	}
	return strconv.Quote(s)
}

func quoteValue(s string) string {
	if isBare(s) && !strings.HasPrefix(s, "\"") {
		return s
	}
	return strconv.Quote(s)
}

func (p pred) String() string {
	// Without fmt: a derivation writes every feature of every sampled
	// request of the route, and most are lengths.
	rng := func() string {
		if p.hi < 0 {
			return strconv.Itoa(p.lo) + ".."
		}
		return strconv.Itoa(p.lo) + ".." + strconv.Itoa(p.hi)
	}
	switch p.op {
	case opPresent:
		return p.subject()
	case opAbsent:
		return "!" + p.subject()
	case opEqual:
		return p.subject() + "=" + quoteValue(p.value)
	case opLen:
		return "len(" + p.subject() + ")=" + rng()
	case opKind:
		return "kind(" + p.subject() + ")=" + p.value
	case opType:
		return "type(" + p.subject() + ")=" + p.value
	case opDepth:
		return "depth(" + p.subject() + ")=" + rng()
	}
	return "?"
}

// Match is a parsed rule condition.
type Match struct {
	Method string  // "*" for any
	Path   string  // exact, template, prefix/* or *
	preds  []pred  // sorted by text, no duplicates
	eval   []*pred // preds in evaluation order; set before sharing
}

// ErrSyntax marks a rule that does not parse.
var ErrSyntax = errors.New("rule syntax")

var kinds = []string{"empty", "digits", "alpha", "hex", "number", "word", "text", "control", "binary"}
var jsonTypes = []string{"object", "array", "string", "number", "bool", "null"}

// Parse parses rule text.
func Parse(s string) (*Match, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, fmt.Errorf("parse rule %q: %w", s, err)
	}
	if len(toks) < 2 {
		return nil, fmt.Errorf("parse rule %q: %w: want METHOD PATH [PREDICATE]...", s, ErrSyntax)
	}
	path, rest, err := unquoteLead(toks[1], "")
	if err != nil || rest != "" {
		return nil, fmt.Errorf("parse rule %q: %w: bad path %q", s, ErrSyntax, toks[1])
	}
	m := &Match{Method: toks[0], Path: path}
	if m.Method != "*" && !validMethod(m.Method) {
		return nil, fmt.Errorf("parse rule %q: %w: bad method %q", s, ErrSyntax, m.Method)
	}
	if m.Path != "*" && !strings.HasPrefix(m.Path, "/") {
		return nil, fmt.Errorf("parse rule %q: %w: path %q must start with / or be *", s, ErrSyntax, m.Path)
	}
	if i := strings.Index(m.Path, "*"); i >= 0 && m.Path != "*" && (i != len(m.Path)-1 || !strings.HasSuffix(m.Path, "/*")) {
		return nil, fmt.Errorf("parse rule %q: %w: * only as the whole path or a final /* segment", s, ErrSyntax)
	}
	for _, t := range toks[2:] {
		p, err := parsePred(t)
		if err != nil {
			return nil, fmt.Errorf("parse rule %q: %w", s, err)
		}
		m.preds = append(m.preds, p)
	}
	m.normalize()
	m.sortEval()
	return m, nil
}

func validMethod(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// tokenize splits on spaces outside Go-quoted strings and unquotes nothing:
// predicates unquote their own parts.
func tokenize(s string) ([]string, error) {
	var toks []string
	var cur strings.Builder
	inQuote, esc := false, false
	for _, r := range s {
		switch {
		case inQuote && esc:
			esc = false
		case inQuote && r == '\\':
			esc = true
		case r == '"':
			inQuote = !inQuote
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if cur.Len() > 0 {
				toks = append(toks, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteRune(r)
	}
	if inQuote {
		return nil, fmt.Errorf("%w: unterminated quote", ErrSyntax)
	}
	if cur.Len() > 0 {
		toks = append(toks, cur.String())
	}
	return toks, nil
}

// unquoteLead reads a bare word (up to one of stops) or a Go-quoted string at
// the start of s, returning it and the rest.
func unquoteLead(s, stops string) (string, string, error) {
	if strings.HasPrefix(s, "\"") {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", "", fmt.Errorf("%w: bad quoted string in %q", ErrSyntax, s)
		}
		v, _ := strconv.Unquote(q)
		return v, s[len(q):], nil
	}
	i := strings.IndexAny(s, stops)
	if i < 0 {
		i = len(s)
	}
	return s[:i], s[i:], nil
}

func parseSubject(s string) (pred, error) {
	var p pred
	switch {
	case s == "body":
		p.src = srcBody
		return p, nil
	case strings.HasPrefix(s, "query."), strings.HasPrefix(s, "header."):
		prefix, rest, _ := strings.Cut(s, ".")
		name, tail, err := unquoteLead(rest, "")
		if err != nil {
			return p, err
		}
		if (name == "" && !strings.HasPrefix(rest, "\"")) || tail != "" {
			return p, fmt.Errorf("%w: bad %s name in %q", ErrSyntax, prefix, s)
		}
		p.name = name
		p.src = srcQuery
		if prefix == "header" {
			p.src = srcHeader
			p.name = textproto.CanonicalMIMEHeaderKey(name)
		}
		return p, nil
	case s == "json" || strings.HasPrefix(s, "json.") || strings.HasPrefix(s, "json[]"):
		canon, err := canonJSONPath(s)
		if err != nil {
			return p, err
		}
		p.src, p.name = srcJSON, canon
		return p, nil
	}
	return p, fmt.Errorf("%w: unknown subject %q (want query.NAME, header.NAME, body, json[.PATH])", ErrSyntax, s)
}

// canonJSONPath re-quotes a JSON path's keys the way feature extraction
// writes them, so that hand-written and derived paths compare equal.
func canonJSONPath(s string) (string, error) {
	out := "json"
	rest := s[len("json"):]
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "[]"):
			out += "[]"
			rest = rest[2:]
		case strings.HasPrefix(rest, "."):
			key, tail, err := unquoteLead(rest[1:], ".[")
			if err != nil {
				return "", err
			}
			if key == "" && !strings.HasPrefix(rest[1:], "\"") {
				return "", fmt.Errorf("%w: empty key in JSON path %q", ErrSyntax, s)
			}
			out += "." + quoteKey(key)
			rest = tail
		default:
			return "", fmt.Errorf("%w: bad JSON path %q", ErrSyntax, s)
		}
	}
	return out, nil
}

func parseRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, fmt.Errorf("%w: bad range %q (want N, LO..HI or LO..)", ErrSyntax, s)
		}
		return n, n, nil
	}
	lo, err = strconv.Atoi(a)
	if err != nil || lo < 0 {
		return 0, 0, fmt.Errorf("%w: bad range %q", ErrSyntax, s)
	}
	if b == "" {
		return lo, -1, nil
	}
	hi, err = strconv.Atoi(b)
	if err != nil || hi < lo {
		return 0, 0, fmt.Errorf("%w: bad range %q", ErrSyntax, s)
	}
	return lo, hi, nil
}

func parsePred(t string) (pred, error) {
	for _, fn := range []struct {
		name string
		op   op
	}{{"len(", opLen}, {"kind(", opKind}, {"type(", opType}, {"depth(", opDepth}} {
		if !strings.HasPrefix(t, fn.name) {
			continue
		}
		subj, arg, ok := strings.Cut(t[len(fn.name):], ")=")
		if !ok {
			return pred{}, fmt.Errorf("%w: %q: want %sSUBJECT)=VALUE", ErrSyntax, t, fn.name)
		}
		p, err := parseSubject(subj)
		if err != nil {
			return p, err
		}
		p.op = fn.op
		switch fn.op {
		case opLen, opDepth:
			if fn.op == opDepth && (p.src != srcJSON || p.name != "json") {
				return p, fmt.Errorf("%w: %q: depth() applies to json only", ErrSyntax, t)
			}
			p.lo, p.hi, err = parseRange(arg)
			return p, err
		case opKind:
			if !slices.Contains(kinds, arg) {
				return p, fmt.Errorf("%w: %q: kind must be one of %s", ErrSyntax, t, strings.Join(kinds, ", "))
			}
		case opType:
			if p.src != srcJSON || !slices.Contains(jsonTypes, arg) {
				return p, fmt.Errorf("%w: %q: type() takes a json subject and one of %s", ErrSyntax, t, strings.Join(jsonTypes, ", "))
			}
		}
		if p.src == srcBody {
			return p, fmt.Errorf("%w: %q: body takes only len()", ErrSyntax, t)
		}
		p.value = arg
		return p, nil
	}
	absent := strings.HasPrefix(t, "!")
	if absent {
		t = t[1:]
	}
	// The subject ends at the first = outside quotes.
	subj, val, hasVal := cutUnquoted(t, '=')
	p, err := parseSubject(subj)
	if err != nil {
		return p, err
	}
	if p.src == srcBody {
		return p, fmt.Errorf("%w: body takes only len()", ErrSyntax)
	}
	switch {
	case absent && hasVal:
		return p, fmt.Errorf("%w: %q: ! takes no value", ErrSyntax, t)
	case absent:
		p.op = opAbsent
	case hasVal:
		v, rest, err := unquoteLead(val, "")
		if err != nil {
			return p, err
		}
		if rest != "" {
			return p, fmt.Errorf("%w: trailing %q", ErrSyntax, rest)
		}
		p.op, p.value = opEqual, v
	default:
		p.op = opPresent
	}
	return p, nil
}

func cutUnquoted(s string, sep byte) (before, after string, found bool) {
	inQuote, esc := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && esc:
			esc = false
		case inQuote && c == '\\':
			esc = true
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// normalize sorts and deduplicates predicates and drops presence predicates
// implied by another predicate on the same subject.
func (m *Match) normalize() {
	slices.SortFunc(m.preds, func(a, b pred) int { return strings.Compare(a.String(), b.String()) })
	m.preds = slices.CompactFunc(m.preds, func(a, b pred) bool { return a == b })
	implied := map[string]bool{}
	for _, p := range m.preds {
		if p.op != opPresent && p.op != opAbsent {
			implied[p.subject()] = true
		}
	}
	m.preds = slices.DeleteFunc(m.preds, func(p pred) bool { return p.op == opPresent && implied[p.subject()] })
}

// String is the canonical text of m; Parse(m.String()) equals m.
func (m *Match) String() string {
	var b strings.Builder
	b.WriteString(m.Method)
	b.WriteByte(' ')
	b.WriteString(quoteValue(m.Path))
	for _, p := range m.preds {
		b.WriteByte(' ')
		b.WriteString(p.String())
	}
	return b.String()
}

// ID is a stable identifier of the condition: the same rule text always gets
// the same id, so a rule is never installed twice.
func (m *Match) ID() string {
	sum := sha256.Sum256([]byte(m.String()))
	return "s" + hex.EncodeToString(sum[:5])
}

// Preds returns the number of predicates beyond method and path.
func (m *Match) Preds() int { return len(m.preds) }

// Matches reports whether in satisfies m. It builds a fresh view; the
// matcher shares one view across rules.
func (m *Match) Matches(in *Input) bool {
	return m.headMatches(in.Method, in.Path) && m.predsHold(newView(in))
}

func (m *Match) headMatches(method, path string) bool {
	if m.Method != "*" && m.Method != method && !(m.Method == http.MethodGet && method == http.MethodHead) {
		return false
	}
	return pathMatches(m.Path, path)
}

// pathMatches matches a rule path against a request path segment by segment.
func pathMatches(pattern, path string) bool {
	if pattern == "*" || pattern == path {
		return true
	}
	for {
		pseg, prest, pmore := strings.Cut(strings.TrimPrefix(pattern, "/"), "/")
		if pseg == "*" && !pmore {
			return true
		}
		rseg, rrest, rmore := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if !isParam(pseg) && pseg != rseg {
			return false
		}
		if isParam(pseg) && rseg == "" {
			return false
		}
		if !pmore || !rmore {
			return pmore == rmore
		}
		pattern, path = "/"+prest, "/"+rrest
	}
}

func isParam(seg string) bool {
	return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}")
}

func (m *Match) predsHold(v *view) bool {
	if m.eval == nil {
		m.sortEval()
	}
	for _, p := range m.eval {
		if !p.holds(v) {
			return false
		}
	}
	return true
}

// sortEval fixes the evaluation order: cheapest first, so that most
// non-matching requests are rejected before the body is looked at.
func (m *Match) sortEval() {
	eval := make([]*pred, len(m.preds))
	for i := range m.preds {
		eval[i] = &m.preds[i]
	}
	slices.SortStableFunc(eval, func(a, b *pred) int { return a.cost() - b.cost() })
	m.eval = eval
}

func (p *pred) holds(v *view) bool {
	switch p.src {
	case srcQuery:
		vals, ok := v.queryValues()[p.name]
		return p.holdsValues(vals, ok)
	case srcHeader:
		vals, ok := v.in.Header[p.name]
		return p.holdsValues(vals, ok)
	case srcBody:
		return p.op == opLen && p.inRange(v.bodyLen())
	}
	f := v.fact(p.src, p.name)
	if p.op == opAbsent {
		return f == nil
	}
	if f == nil {
		return false
	}
	switch p.op {
	case opPresent:
		return true
	case opEqual:
		return slices.Contains(f.values, p.value)
	case opLen:
		return slices.ContainsFunc(f.lens, p.inRange)
	case opKind:
		return slices.Contains(f.kinds, p.value)
	case opType:
		return slices.Contains(f.types, p.value)
	case opDepth:
		return p.inRange(f.depth)
	}
	return false
}

func (p *pred) inRange(n int) bool { return n >= p.lo && (p.hi < 0 || n <= p.hi) }

// holdsValues evaluates a query or header predicate on the raw values,
// without building a fact: the matcher's common case.
func (p *pred) holdsValues(vals []string, present bool) bool {
	switch p.op {
	case opPresent:
		return present
	case opAbsent:
		return !present
	case opEqual:
		return slices.Contains(vals, p.value)
	case opLen:
		for _, x := range vals {
			if p.inRange(len(x)) {
				return true
			}
		}
	case opKind:
		for _, x := range vals {
			if kind(x) == p.value {
				return true
			}
		}
	}
	return false
}

// cost orders predicates for evaluation: header and query lookups first,
// the body's length next, kinds, and the JSON walk last.
func (p *pred) cost() int {
	c := 0
	switch p.src {
	case srcQuery:
		c = 10
	case srcBody:
		c = 20
	case srcJSON:
		c = 100
	}
	if p.op == opKind {
		c += 5
	}
	return c
}
