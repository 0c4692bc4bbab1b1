// Command backend is the tiny HTTP service the proxy benchmark puts behind
// graft and nginx: small JSON answers, keep-alive, nothing else.
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"strconv"
)

func main() {
	addr := flag.String("addr", "", "listen address (default 127.0.0.1:$PORT)")
	flag.Parse()
	if *addr == "" {
		*addr = "127.0.0.1:" + os.Getenv("PORT")
	}
	body := []byte(`{"id":42,"name":"graft","ok":true,"items":[1,2,3]}`)
	n := strconv.Itoa(len(body))
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{n}
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
