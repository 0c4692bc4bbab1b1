// Command srv answers GET /check?s=... with "ok" or "denied"; the e2e test
// patches its guard while it serves.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"

	"example.com/srv/guard"
)

func main() {
	addr := "127.0.0.1:0"
	if port := os.Getenv("PORT"); port != "" { // under graft run --proxy
		addr = "127.0.0.1:" + port
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("addr", ln.Addr())
	http.HandleFunc("/check", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Pid", strconv.Itoa(os.Getpid()))
		fmt.Fprint(w, guard.Check(r.URL.Query().Get("s")))
	})
	http.Serve(ln, nil)
}
