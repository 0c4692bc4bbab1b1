module github.com/graftdev/graft

go 1.26.8

require (
	github.com/prometheus/client_golang v1.23.2 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/tools v0.52.0 // indirect
)
