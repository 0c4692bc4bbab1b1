// Package differ compares HTTP answers for a shadow run: field by field
// (status, headers, JSON bodies by path), with the noise between two
// instances of the serving version subtracted by an anytime-valid paired
// test, grouped by route templates inferred from the traffic, and judged
// into a verdict (pass, fail, undecided) with evidence. It also renders the
// report as text and HTML. It starts no process and opens no socket; package
// shadow drives it. docs/shadow.md explains the statistics.
package differ
