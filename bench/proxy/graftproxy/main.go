// Command graftproxy runs internal/proxy alone in front of one backend, for
// the proxy benchmark when `graft run --proxy` is not what is measured.
// With -stdlib it runs Go's stock httputil.ReverseProxy instead (transport
// tuned for one upstream), the baseline internal/proxy was built to beat.
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/graftdev/graft/internal/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve")
	backend := flag.String("backend", "127.0.0.1:8080", "backend address")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until SIGTERM")
	stdlib := flag.Bool("stdlib", false, "serve with net/http/httputil.ReverseProxy instead")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var serve func(net.Listener) error
	var shutdown func(context.Context) error
	if *stdlib {
		rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: *backend})
		rp.Transport = &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
		rp.ErrorLog = log.New(io.Discard, "", 0) // wrk ending its connections is not news
		srv := &http.Server{Handler: rp}
		serve, shutdown = srv.Serve, srv.Shutdown
	} else {
		p := proxy.New(proxy.Options{})
		p.SetPrimary(proxy.NewBackend(1, *backend))
		serve, shutdown = p.Serve, p.Shutdown
	}
	done := make(chan error, 1)
	go func() { done <- serve(ln) }()
	select {
	case err := <-done:
		log.Fatal(err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shutdown(sctx)
	<-done
}
