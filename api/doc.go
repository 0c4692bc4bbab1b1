// Package api holds graft's wire types: the bodies of the admin API, the
// control protocol between a supervisor and its generations, reports, seal
// rules, alerts and manifests. It is a leaf: it imports nothing of graft, so
// the libraries linked into users' programs (live, rt) may import it.
//
// Every JSON document a command prints with --json carries Version
// (currently 1); fields are only ever added within a version.
package api

// Version is the version of every JSON document graft emits.
const Version = 1

// Error is the body of every non-2xx admin API answer.
type Error struct {
	Version int    `json:"version"`
	Error   string `json:"error"`
}
