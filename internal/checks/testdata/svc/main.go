// Command svc is a small HTTP service whose lookup crashes the process on
// an index out of range (it runs in a goroutine, where net/http does not
// recover panics), and whose /spin hangs for a negative n. Tests build it
// with graft build and run it alone or under the supervisor (PORT from
// proxy mode, else the first argument).
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
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

// spinning counts the calls of spin in progress.
var spinning atomic.Int32

// spin counts n down to zero: a negative n runs for 2^63 iterations, a
// hang. Its loop has a loop site.
//
//go:noinline
func spin(n int) (int, error) {
	spinning.Add(1)
	defer spinning.Add(-1)
	steps := 0
	for n != 0 {
		n--
		steps++
	}
	return steps, nil
}

func handle(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/spinning":
		fmt.Fprintln(w, spinning.Load())
		return
	case "/spin":
		// In the handler's goroutine: a panic here is recovered by
		// net/http (the connection is closed), not a crash.
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		steps, err := spin(n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, steps)
		return
	}
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
