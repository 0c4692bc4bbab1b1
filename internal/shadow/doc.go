// Package shadow proves a candidate version on live traffic while the
// serving version keeps control: it mirrors sampled primary exchanges to a
// candidate lane and to a secondary lane (a second instance of the serving
// version), compares the answers field by field, subtracts the noise the
// secondary shows, groups requests by inferred route templates, and decides
// a verdict (pass, fail, undecided) with a sequential statistical test.
//
// The comparison itself (field differences, noise, route templates, the
// test, the verdict and the report's rendering) is package differ, which
// needs no process. The lanes are asked and the answers compared by the
// shadow worker, package worker, normally a process of its own at the
// lanes' idle priority (graft shadow-worker) fed over a socket pair; this
// package is graft's side: Controller admits exchanges, hands them to the
// worker and records its outcomes, Service runs one run at a time, and
// Attach wires it into a supervisor. See docs/shadow.md for the
// statistics, the worker and the report format.
package shadow
