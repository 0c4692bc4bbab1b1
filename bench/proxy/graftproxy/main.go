// Command graftproxy runs internal/proxy alone in front of one backend, for
// the proxy benchmark when `graft run --proxy` is not what is measured.
package main

import (
	"flag"
	"log"
	"net"

	"github.com/graftdev/graft/internal/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve")
	backend := flag.String("backend", "127.0.0.1:8080", "backend address")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	p := proxy.New(proxy.Options{})
	p.SetPrimary(proxy.NewBackend(1, *backend))
	log.Fatal(p.Serve(ln))
}
