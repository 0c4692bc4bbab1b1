package rt

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// OpFunc answers an admin op registered with HandleOp; arg is the request's
// Arg, the result goes into the response's Result.
type OpFunc func(arg json.RawMessage) (any, error)

var ops = map[string]OpFunc{}

// HandleOp registers f for admin requests with Op op (for packages linked
// into the program, such as graft patch's loader). Built-in ops cannot be
// replaced.
func HandleOp(op string, f OpFunc) error {
	mu.Lock()
	defer mu.Unlock()
	switch op {
	case "list", "on", "off", "seal", "unseal", "revert":
		return fmt.Errorf("handle op %q: built in", op)
	}
	if _, dup := ops[op]; dup {
		return fmt.Errorf("handle op %q: already registered", op)
	}
	ops[op] = f
	return nil
}

// Server is an rt admin socket.
type Server struct {
	ln   net.Listener
	path string
	wg   sync.WaitGroup
}

var (
	defaultServer *Server
	serverErr     error
)

func startAdmin(path string) error {
	s, err := Serve(path)
	mu.Lock()
	defaultServer, serverErr = s, err
	mu.Unlock()
	return err
}

// Serve listens on the unix socket path (mode 0600, replacing a stale
// socket) and answers admin requests until Close. A program normally gets
// this from GRAFT_RT_SOCKET at start; Serve is for programs that choose
// the path themselves.
func Serve(path string) (*Server, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("serve rt admin %s: another process answers there", path)
		}
		os.Remove(path)
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("serve rt admin: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("serve rt admin: %w", err)
	}
	s := &Server{ln: ln, path: path}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting, removes the socket and waits for the accept loop.
// Connections being answered finish their current request.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			serveConn(c)
		}()
	}
}

func serveConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	enc := json.NewEncoder(c)
	dec := json.NewDecoder(r)
	for {
		var req Request
		if err := dec.Decode(&req); err != nil {
			if !errors.Is(err, io.EOF) {
				enc.Encode(Response{Version: wireVersion, Error: "bad request: " + err.Error()})
			}
			return
		}
		if err := enc.Encode(Do(req)); err != nil {
			return
		}
	}
}

// Do answers one admin request in process; the socket server calls it, and
// so can tests and linked-in packages.
func Do(req Request) Response {
	resp := Response{Version: wireVersion, PID: os.Getpid(), BuildID: BuildID()}
	switch req.Op {
	case "list":
		l := List()
		resp.List = &l
		for _, p := range Patches() {
			resp.Patches = append(resp.Patches, PatchInfo{ID: p.ID, Funcs: p.Funcs})
		}
	case "on", "off":
		on := req.Op == "on"
		for _, id := range req.IDs {
			err := SetSite(id, on, req.Limit)
			if errors.Is(err, ErrNoSite) {
				// A point id switched "on" seals it: one verb for both,
				// so an alert can name either.
				err = Seal(id, on)
			}
			if err != nil {
				resp.Unknown = append(resp.Unknown, id)
				continue
			}
			resp.Changed = append(resp.Changed, id)
		}
	case "seal", "unseal":
		for _, id := range req.IDs {
			if err := Seal(id, req.Op == "seal"); err != nil {
				resp.Unknown = append(resp.Unknown, id)
				continue
			}
			resp.Changed = append(resp.Changed, id)
		}
	case "revert":
		for _, id := range req.IDs {
			if err := Revert(id); err != nil {
				resp.Error = err.Error()
				return resp
			}
			resp.Changed = append(resp.Changed, id)
		}
	default:
		mu.Lock()
		f, ok := ops[req.Op]
		mu.Unlock()
		if !ok {
			resp.Error = fmt.Sprintf("unknown op %q", req.Op)
			return resp
		}
		v, err := f(req.Arg)
		if err != nil {
			resp.Error = err.Error()
			return resp
		}
		b, err := json.Marshal(v)
		if err != nil {
			resp.Error = fmt.Sprintf("op %s: encode result: %v", req.Op, err)
			return resp
		}
		resp.Result = b
	}
	if len(resp.Unknown) > 0 && len(resp.Changed) == 0 {
		resp.Error = fmt.Sprintf("unknown ids: %v", resp.Unknown)
	}
	return resp
}

// List returns every point and site as checks, with rt's counters.
func List() CheckList {
	l := CheckList{Version: wireVersion,
		Stopped: siteStops.Load(), SealedCalls: sealedCalls.Load(), Recovered: recovered.Load()}
	for _, s := range AllSites() {
		l.Checks = append(l.Checks, Check{ID: s.ID, Kind: s.Kind, Provider: "rt", On: s.On, Limit: s.Limit,
			Package: s.Package, Func: s.Func, File: s.File, Line: s.Line, Point: s.Point})
	}
	for _, p := range Points() {
		l.Checks = append(l.Checks, Check{ID: p.ID, Kind: "point", Provider: "rt", On: p.Sealed, Patched: p.Patched,
			Package: p.Package, Func: p.Func, File: p.File, Line: p.Line})
	}
	return l
}
