// Package supervised holds live's process tests under graft's real
// supervisor (internal/supervisor), apart from live's own tests so that
// those never depend on the supervisor compiling. It has no code of its own.
package supervised
