package differ

import (
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/graftdev/graft/api"
)

// Options configures a Differ; the zero value works.
type Options struct {
	Compare CompareOptions
	Router  RouterOptions
	// Alpha is the family-wise false-alarm probability of the divergence
	// tests over the whole run; 0 means 0.01.
	Alpha float64
	// TargetRate is the regression rate a pass must rule out; 0 means 0.01.
	TargetRate float64
	// Confidence of that bound; 0 means 0.95.
	Confidence float64
	// MaxFields bounds the fields kept per route (the rest count under
	// "(other)"); 0 means 512.
	MaxFields int
	// MaxExamples bounds the examples kept over all routes; 0 means 200.
	MaxExamples int
	// ExampleBody bounds each example answer's body; 0 means 2 KiB.
	ExampleBody int
}

// Differ accumulates the comparisons of compared requests by route and
// field, and judges them. It is safe for concurrent use.
type Differ struct {
	opts   Options
	cmp    *Comparer
	router *Router

	mu       sync.Mutex
	routes   map[string]*routeStats
	examples int
}

type routeStats struct {
	compared, diffs, noise int
	fields                 map[string]*fieldStats
	examples               []api.Example
}

type fieldStats struct {
	diffs, noise      int
	candOnly, secOnly int
	divergent         bool // latched: the test's guarantee covers every look
	examples          int
}

// NewDiffer returns a Differ configured by opts.
func New(opts Options) (*Differ, error) {
	if opts.Alpha <= 0 {
		opts.Alpha = 0.01
	}
	if opts.TargetRate <= 0 {
		opts.TargetRate = 0.01
	}
	if opts.Confidence <= 0 {
		opts.Confidence = 0.95
	}
	if opts.MaxFields <= 0 {
		opts.MaxFields = 512
	}
	if opts.MaxExamples <= 0 {
		opts.MaxExamples = 200
	}
	if opts.ExampleBody <= 0 {
		opts.ExampleBody = 2 << 10
	}
	r, err := NewRouter(opts.Router)
	if err != nil {
		return nil, err
	}
	return &Differ{opts: opts, cmp: NewComparer(opts.Compare), router: r, routes: map[string]*routeStats{}}, nil
}

// Options returns the options in effect, defaults filled in.
func (d *Differ) Options() Options { return d.opts }

// Outcome is what comparing one request's three answers found: the sorted
// field paths in which the secondary (Noise) and the candidate (Diffs)
// differ from the primary, and the answers an example may quote. The
// comparison (Comparer.Outcome) can run elsewhere than the Differ that
// records it (the shadow's worker process); the answers are then only
// sent when the candidate alone differs in some field, the one case in
// which Record may keep an example.
type Outcome struct {
	Noise, Diffs                  []string
	Primary, Secondary, Candidate *Answer
}

// CandidateOnly says whether the candidate differs in a field the
// secondary does not: only then may Record keep an example.
func (o *Outcome) CandidateOnly() bool {
	j := 0
	for _, f := range o.Diffs {
		for j < len(o.Noise) && o.Noise[j] < f {
			j++
		}
		if j == len(o.Noise) || o.Noise[j] != f {
			return true
		}
	}
	return false
}

// Add compares one request's three answers and records the outcome: its
// method and URI, and the three answers. It returns the request's route.
func (d *Differ) Add(method, path, rawQuery string, primary, secondary, candidate *Answer) string {
	noise, diffs := d.cmp.diff3(primary, secondary, candidate)
	return d.Record(method, path, rawQuery, Outcome{Noise: noise, Diffs: diffs, Primary: primary, Secondary: secondary, Candidate: candidate})
}

// Record records one compared request's outcome under its route, and
// returns the route. An example quotes o's answers; an answer that is nil
// there is shown as empty.
func (d *Differ) Record(method, path, rawQuery string, o Outcome) string {
	route := d.router.Route(method, path)
	noise, diffs := o.Noise, o.Diffs
	d.mu.Lock()
	defer d.mu.Unlock()
	rs := d.routes[route]
	if rs == nil {
		rs = &routeStats{fields: map[string]*fieldStats{}}
		d.routes[route] = rs
	}
	rs.compared++
	if len(diffs) > 0 {
		rs.diffs++
	}
	if len(noise) > 0 {
		rs.noise++
	}
	// Both lists are sorted: walk them together to find the discordant
	// pairs.
	i, j := 0, 0
	for i < len(diffs) || j < len(noise) {
		var field string
		var inD, inN bool
		switch {
		case j >= len(noise) || i < len(diffs) && diffs[i] < noise[j]:
			field, inD = diffs[i], true
			i++
		case i >= len(diffs) || noise[j] < diffs[i]:
			field, inN = noise[j], true
			j++
		default:
			field, inD, inN = diffs[i], true, true
			i++
			j++
		}
		fs := rs.field(field, d.opts.MaxFields)
		if inD {
			fs.diffs++
		}
		if inN {
			fs.noise++
		}
		if inD && !inN {
			fs.candOnly++
			// Keep evidence for a field the first time the candidate alone
			// differs in it.
			if fs.examples == 0 && d.examples < d.opts.MaxExamples && len(rs.examples) < 20 {
				fs.examples++
				d.examples++
				rs.examples = append(rs.examples, d.example(field, method, uriOf(path, rawQuery), o.Primary, o.Secondary, o.Candidate))
			}
		}
		if inN && !inD {
			fs.secOnly++
		}
	}
	return route
}

func uriOf(path, rawQuery string) string {
	if rawQuery == "" {
		return path
	}
	return path + "?" + rawQuery
}

func (rs *routeStats) field(path string, maxFields int) *fieldStats {
	fs := rs.fields[path]
	if fs == nil {
		if len(rs.fields) >= maxFields {
			path = "(other)"
			if fs = rs.fields[path]; fs != nil {
				return fs
			}
		}
		fs = &fieldStats{}
		rs.fields[path] = fs
	}
	return fs
}

func (d *Differ) example(field, method, uri string, p, s, c *Answer) api.Example {
	return api.Example{
		Field: field, Method: method, URI: uri,
		Primary: d.exampleAnswer(p), Secondary: d.exampleAnswer(s), Candidate: d.exampleAnswer(c),
	}
}

func (d *Differ) exampleAnswer(a *Answer) api.ExampleAnswer {
	if a == nil {
		return api.ExampleAnswer{}
	}
	ea := api.ExampleAnswer{Status: a.Status}
	if a.Err != nil {
		ea.Error = a.Err.Error()
		return ea
	}
	if len(a.Header) > 0 {
		ea.Header = map[string]string{}
		for k, v := range a.Header {
			ea.Header[http.CanonicalHeaderKey(k)] = strings.Join(v, ", ")
		}
	}
	b := a.Body
	if len(b) > d.opts.ExampleBody {
		b = b[:d.opts.ExampleBody]
	}
	if utf8.Valid(b) {
		ea.Body = string(b)
	} else {
		ea.Body = strings.ToValidUTF8(string(b), "\uFFFD")
	}
	if len(b) < len(a.Body) || a.Truncated {
		ea.Body += "…"
	}
	return ea
}

// Judgement is the Differ's verdict over all routes so far.
type Judgement struct {
	Verdict string
	Reason  string
	Routes  []api.RouteReport
}

// Judge merges routes whose templates have since collapsed, runs the
// divergence test on every field and decides the verdict. Divergence is
// latched: once a field is divergent it stays so.
func (d *Differ) Judge() Judgement {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.remerge()
	// Bonferroni over every (route, field) pair with a discordant pair.
	m := 0
	for _, rs := range d.routes {
		for _, fs := range rs.fields {
			if fs.candOnly+fs.secOnly > 0 {
				m++
			}
		}
	}
	threshold := math.Log(float64(max(m, 1)) / d.opts.Alpha)
	needed := Needed(d.opts.TargetRate, d.opts.Confidence)
	j := Judgement{Verdict: api.VerdictPass}
	keys := make([]string, 0, len(d.routes))
	for k := range d.routes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var failing, waiting []string
	for _, key := range keys {
		rs := d.routes[key]
		rr := api.RouteReport{Route: key, Compared: rs.compared, Diffs: rs.diffs, Noise: rs.noise, Needed: needed, Fields: []api.FieldReport{}}
		paths := make([]string, 0, len(rs.fields))
		for p := range rs.fields {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		for _, p := range paths {
			fs := rs.fields[p]
			e := evidence(fs.candOnly, fs.secOnly)
			if fs.candOnly > fs.secOnly && e >= threshold {
				fs.divergent = true
			}
			if fs.noise == 0 {
				rr.Unexplained = max(rr.Unexplained, fs.diffs)
			}
			rr.Fields = append(rr.Fields, api.FieldReport{
				Path: p, Diffs: fs.diffs, Noise: fs.noise,
				CandidateOnly: fs.candOnly, SecondaryOnly: fs.secOnly,
				P: math.Min(1, math.Exp(-e)), Divergent: fs.divergent,
			})
			rr.Divergent = rr.Divergent || fs.divergent
		}
		rr.Bound = 1
		if rr.Unexplained == 0 {
			rr.Bound = upperBound(rs.compared, d.opts.Confidence)
		}
		rr.Examples = slices.Clone(rs.examples)
		switch {
		case rr.Divergent:
			rr.Verdict = api.VerdictFail
			failing = append(failing, key)
		case rr.Unexplained == 0 && rs.compared >= needed:
			rr.Verdict = api.VerdictPass
		default:
			rr.Verdict = api.VerdictUndecided
			waiting = append(waiting, key)
		}
		j.Routes = append(j.Routes, rr)
	}
	switch {
	case len(failing) > 0:
		j.Verdict = api.VerdictFail
		j.Reason = "divergent: " + strings.Join(failing, ", ")
	case len(keys) == 0:
		j.Verdict = api.VerdictUndecided
		j.Reason = "no request compared yet"
	case len(waiting) > 0:
		j.Verdict = api.VerdictUndecided
		j.Reason = "not enough evidence yet on " + strings.Join(waiting, ", ")
	default:
		j.Reason = "no divergence; every route rules out its target rate"
	}
	if j.Routes == nil {
		j.Routes = []api.RouteReport{}
	}
	return j
}

// remerge folds the statistics of routes whose template has changed (a
// position collapsed to {param} after they were recorded) into the route
// they now belong to.
func (d *Differ) remerge() {
	for key, rs := range d.routes {
		now := d.router.Template(key)
		if now == key {
			continue
		}
		delete(d.routes, key)
		dst := d.routes[now]
		if dst == nil {
			d.routes[now] = rs
			continue
		}
		dst.compared += rs.compared
		dst.diffs += rs.diffs
		dst.noise += rs.noise
		for p, fs := range rs.fields {
			to := dst.field(p, d.opts.MaxFields)
			to.diffs += fs.diffs
			to.noise += fs.noise
			to.candOnly += fs.candOnly
			to.secOnly += fs.secOnly
			to.divergent = to.divergent || fs.divergent
			to.examples += fs.examples
		}
		dst.examples = append(dst.examples, rs.examples...)
	}
}
