// Package shadow proves a candidate version on live traffic while the
// serving version keeps control: it mirrors sampled primary exchanges to a
// candidate lane and to a secondary lane (a second instance of the serving
// version), compares the answers field by field, subtracts the noise the
// secondary shows, groups requests by inferred route templates, and decides
// a verdict (pass, fail, undecided) with a sequential statistical test.
//
// The pure parts (Comparer, Router, Differ, the renderers) need no process;
// Controller drives the lanes; Attach wires everything into a supervisor.
// See docs/shadow.md for the statistics and the report format.
package shadow
