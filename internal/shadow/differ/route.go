package differ

import (
	"fmt"
	"strings"
	"sync"
)

// Router groups requests by route template ("GET /users/{id}"). Templates
// are inferred from the traffic: a path segment that looks like an
// identifier (decimal number, UUID, hex string of 8+ characters with a
// digit, or a 16+ character token mixing letters and digits) becomes {id};
// a position under one parent that has seen more than MaxChildren distinct
// literal segments becomes {param}. Configured patterns override inference.
// Router is safe for concurrent use.
type Router struct {
	mu          sync.Mutex
	patterns    []pattern
	root        *node
	nodes       int
	maxChildren int
	maxNodes    int
}

// RouterOptions configures a Router; the zero value works.
type RouterOptions struct {
	// Patterns override inference, tried in order: "GET /users/{name}" or
	// "/users/{name}" (any method); {x} matches one segment, a final {x...}
	// the rest of the path.
	Patterns []string
	// MaxChildren is how many distinct literal segments a position may have
	// before it becomes {param}; 0 means 32.
	MaxChildren int
	// MaxNodes bounds the memory of inference; past it new literal segments
	// become {param}. 0 means 10,000.
	MaxNodes int
}

type pattern struct {
	method string // "" for any
	segs   []string
	rest   bool // last segment is {x...}
	text   string
}

type node struct {
	children map[string]*node
	wild     *node // the {param} child once collapsed
}

// NewRouter returns a Router configured by opts.
func NewRouter(opts RouterOptions) (*Router, error) {
	r := &Router{root: &node{}, maxChildren: opts.MaxChildren, maxNodes: opts.MaxNodes}
	if r.maxChildren <= 0 {
		r.maxChildren = 32
	}
	if r.maxNodes <= 0 {
		r.maxNodes = 10000
	}
	for _, s := range opts.Patterns {
		p, err := parsePattern(s)
		if err != nil {
			return nil, err
		}
		r.patterns = append(r.patterns, p)
	}
	return r, nil
}

func parsePattern(s string) (pattern, error) {
	p := pattern{text: strings.TrimSpace(s)}
	path := p.text
	if m, rest, ok := strings.Cut(p.text, " "); ok {
		p.method, path = strings.ToUpper(m), strings.TrimSpace(rest)
	}
	if !strings.HasPrefix(path, "/") {
		return p, fmt.Errorf("route pattern %q: path must start with /", s)
	}
	p.segs = strings.Split(path[1:], "/")
	for i, seg := range p.segs {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "...}") {
			if i != len(p.segs)-1 {
				return p, fmt.Errorf("route pattern %q: {x...} must be last", s)
			}
			p.rest = true
		}
	}
	return p, nil
}

func (p *pattern) match(method string, segs []string) bool {
	if p.method != "" && p.method != method {
		return false
	}
	n := len(p.segs)
	if p.rest {
		if len(segs) < n {
			return false
		}
		n--
	} else if len(segs) != n {
		return false
	}
	for i := range n {
		ps := p.segs[i]
		if strings.HasPrefix(ps, "{") && strings.HasSuffix(ps, "}") {
			continue
		}
		if ps != segs[i] {
			return false
		}
	}
	return true
}

func (p *pattern) route(method string) string {
	path := "/" + strings.Join(p.segs, "/")
	return method + " " + path
}

// Route returns the template of a request and learns from it.
func (r *Router) Route(method, path string) string {
	return r.template(method, path, true)
}

// Template returns the current template of a path or of an earlier
// template without learning; re-templating an earlier route gives its
// present template after more segments have collapsed to {param}.
func (r *Router) Template(route string) string {
	method, path, _ := strings.Cut(route, " ")
	return r.template(method, path, false)
}

const maxSegments = 32

func (r *Router) template(method, path string, learn bool) string {
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	segs := strings.Split(path[1:], "/")
	for i := range r.patterns {
		if r.patterns[i].match(method, segs) {
			return r.patterns[i].route(method)
		}
	}
	if len(segs) > maxSegments {
		segs = append(segs[:maxSegments:maxSegments], "{rest...}")
	}
	out := make([]string, len(segs))
	for i, s := range segs {
		if isIdentifier(s) {
			s = "{id}"
		}
		out[i] = s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.root
	for i, s := range out {
		if isPlaceholder(s) {
			// Placeholders and empty segments are structure, not
			// cardinality: they never count towards collapsing.
		} else if n.wild != nil {
			out[i] = "{param}"
			n = n.wild
			continue
		}
		child := n.children[s]
		if child == nil {
			if !learn {
				// An unseen literal: keep it, nothing below is known.
				return method + " /" + strings.Join(out, "/")
			}
			if r.nodes >= r.maxNodes {
				out[i] = "{param}"
				s = "{param}"
				if child = n.children[s]; child == nil {
					child = &node{}
					r.addChild(n, s, child)
				}
			} else {
				child = &node{}
				r.addChild(n, s, child)
				if n.wild != nil { // addChild collapsed n
					out[i] = "{param}"
					child = n.wild
				}
			}
		}
		n = child
	}
	return method + " /" + strings.Join(out, "/")
}

func (r *Router) addChild(n *node, s string, child *node) {
	if n.children == nil {
		n.children = map[string]*node{}
	}
	n.children[s] = child
	r.nodes++
	if literals(n) > r.maxChildren {
		collapse(n, r.maxChildren)
		r.nodes = count(r.root) - 1
	}
}

func isPlaceholder(s string) bool {
	return s == "{id}" || s == "{param}" || s == "{rest...}" || s == ""
}

// literals counts a node's children that are real path segments.
func literals(n *node) int {
	k := 0
	for s := range n.children {
		if !isPlaceholder(s) {
			k++
		}
	}
	return k
}

// collapse replaces n's literal children by one {param} child holding the
// union of their subtrees.
func collapse(n *node, maxChildren int) {
	if n.children == nil {
		n.children = map[string]*node{}
	}
	w := n.children["{param}"]
	if w == nil {
		w = &node{}
		n.children["{param}"] = w
	}
	for s, c := range n.children {
		if isPlaceholder(s) {
			continue
		}
		merge(w, c, maxChildren)
		delete(n.children, s)
	}
	n.wild = w
}

// merge adds src's subtree to dst's.
func merge(dst, src *node, maxChildren int) {
	for s, c := range src.children {
		if d := dst.children[s]; d != nil {
			merge(d, c, maxChildren)
			continue
		}
		if dst.children == nil {
			dst.children = map[string]*node{}
		}
		dst.children[s] = c
	}
	if src.wild != nil || dst.wild != nil || literals(dst) > maxChildren {
		collapse(dst, maxChildren)
	}
}

func count(n *node) int {
	k := 1
	for _, c := range n.children {
		k += count(c)
	}
	return k
}

// isIdentifier says whether a path segment names one item rather than a
// kind of thing.
func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	digits, hex, letters := 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			hex++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			hex++
			letters++
		case c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z':
			letters++
		}
	}
	switch {
	case digits == len(s):
		return true
	case isUUID(s):
		return true
	case hex == len(s) && len(s) >= 8 && digits > 0:
		return true
	case len(s) >= 16 && digits > 0 && letters > 0 && digits+letters >= len(s)-len(s)/8:
		return true
	}
	return false
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
