// Command svc is a small HTTP service whose lookup crashes the process on
// an index out of range (it runs in a goroutine, where net/http does not
// recover panics). Tests build it with graft build and run it alone or
// under the supervisor (PORT from proxy mode, else the first argument).
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

var items = []string{"a", "b", "c"}

type result struct {
	v   string
	err error
}

// lookup is kept out of line: graft gives functions that the compiler
// inlines no patch point, and the tests seal this one.
//
//go:noinline
func lookup(i int) (string, error) {
	if i < -1000 {
		return "", errors.New("far out")
	}
	return items[i], nil
}

func handle(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(r.URL.Query().Get("i"))
	if err != nil {
		http.Error(w, "bad i", http.StatusBadRequest)
		return
	}
	ch := make(chan result, 1)
	go func() {
		v, err := lookup(i)
		ch <- result{v, err}
	}()
	res := <-ch
	if res.err != nil {
		http.Error(w, res.err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, res.v)
}

func main() {
	addr := "127.0.0.1:" + os.Getenv("PORT")
	if os.Getenv("PORT") == "" {
		addr = os.Args[1]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening", ln.Addr())
	http.Serve(ln, http.HandlerFunc(handle))
}
