// Package worker is the shadow worker: the process (graft re-run as the
// hidden graft shadow-worker, at the lanes' idle CPU priority) that asks
// the candidate and the secondary lane each mirrored request and compares
// the three answers, so that this work takes no CPU from the service. It
// holds both ends of the worker's contract with graft: how graft starts
// it (Start, over a unix socket pair, at idle priority), the
// length-prefixed binary frames on that socket (wire.go), the worker's
// serve loop (Serve) and its small HTTP/1.1 client of the lanes
// (lanes.go). It knows nothing of slots, verdicts or reports: package
// shadow's Controller admits exchanges, sends them here and records the
// outcomes.
package worker
