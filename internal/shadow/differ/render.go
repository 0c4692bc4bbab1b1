package differ

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graftdev/graft/api"
)

// WriteText writes the report for people: the verdict and why, the
// counters, then each route and its fields.
func WriteText(w io.Writer, r *api.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict: %s — %s\n", r.Verdict, r.Reason)
	state := r.State
	if r.Ended != "" {
		state += " (" + r.Ended + ")"
	}
	fmt.Fprintf(&b, "state: %s", state)
	if !r.Started.IsZero() {
		end := r.Finished
		if end.IsZero() {
			end = time.Now()
		}
		fmt.Fprintf(&b, ", %s", end.Sub(r.Started).Round(time.Second))
	}
	if len(r.Candidate) > 0 {
		fmt.Fprintf(&b, "; candidate: %s", strings.Join(r.Candidate, " "))
	}
	b.WriteString("\n")
	if r.Promoted != "" {
		fmt.Fprintf(&b, "promote: %s\n", r.Promoted)
	}
	fmt.Fprintf(&b, "requests %d, eligible %d, mirrored %d, compared %d, dropped %d, skipped %d, lane errors %d\n",
		r.Requests, r.Eligible, r.Mirrored, r.Compared, r.Dropped, r.Skipped, r.LaneErrors)
	fmt.Fprintf(&b, "test: anytime-valid paired test per field, family-wise alpha %g; pass rules out a regression rate of %g%% at %g%% confidence\n",
		r.Alpha, r.TargetRate*100, r.Confidence*100)
	if len(r.Routes) == 0 {
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tVERDICT\tCOMPARED\tNEEDED\tDIFFS\tNOISE\tUNEXPLAINED\tBOUND")
	for _, rr := range r.Routes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", rr.Route, rr.Verdict, rr.Compared, rr.Needed, rr.Diffs, rr.Noise, rr.Unexplained, bound(rr.Bound))
	}
	tw.Flush()
	for _, rr := range r.Routes {
		if len(rr.Fields) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s\n", rr.Route)
		tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  FIELD\tDIFFS\tNOISE\tCAND-ONLY\tSEC-ONLY\tP\t")
		for _, f := range sortedFields(rr.Fields) {
			mark := ""
			if f.Divergent {
				mark = "DIVERGENT"
			}
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%s\t%s\n", f.Path, f.Diffs, f.Noise, f.CandidateOnly, f.SecondaryOnly, pval(f.P), mark)
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sortedFields puts divergent fields first, then by candidate-only
// differences, then by path.
func sortedFields(fs []api.FieldReport) []api.FieldReport {
	out := slices.Clone(fs)
	slices.SortStableFunc(out, func(a, b api.FieldReport) int {
		if a.Divergent != b.Divergent {
			if a.Divergent {
				return -1
			}
			return 1
		}
		if a.CandidateOnly != b.CandidateOnly {
			return b.CandidateOnly - a.CandidateOnly
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out
}

func bound(b float64) string {
	if b >= 1 {
		return "-"
	}
	return fmt.Sprintf("<%.2g%%", b*100)
}

func pval(p float64) string {
	switch {
	case p >= 1:
		return "1"
	case p < 1e-6:
		return "<1e-6"
	}
	return fmt.Sprintf("%.2g", p)
}

//go:embed report.html.tmpl
var reportHTML string

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"bound":  bound,
	"pval":   pval,
	"sorted": sortedFields,
	"join":   strings.Join,
	"ms": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"headers": func(h map[string]string) string {
		keys := make([]string, 0, len(h))
		for k := range h {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %s\n", k, h[k])
		}
		return b.String()
	},
	"pct": func(f float64) string { return fmt.Sprintf("%g%%", f*100) },
}).Parse(reportHTML))

// WriteHTML writes the report as one self-contained HTML page: per route
// and per field, with example requests and the three answers side by side.
func WriteHTML(w io.Writer, r *api.Report) error {
	return htmlTmpl.Execute(w, r)
}
