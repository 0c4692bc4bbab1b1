// Package graft embeds the source of rt, the runtime library that graft
// build links into instrumented programs, so that the graft binary can add
// it to any module from any directory (see internal/instrument). It holds
// nothing else; graft's code lives in cmd/, internal/ and the public
// packages api, client, live and rt.
package graft

import "embed"

// RTSource holds rt/ and rt/rtplugin/ as they are in this module; test
// files are embedded too, and skipped by whoever extracts the source.
//
//go:embed rt/*.go rt/rtplugin/*.go
var RTSource embed.FS
