// Command backend is the service of the real-process shadowing benchmark
// (bench/shadow/procs): a small JSON API that graft run --proxy serves and
// graft shadow runs again as candidate and secondary. Each answer carries
// nondeterministic fields (a timestamp, a request id), as real services'
// answers do, so the shadow has noise to measure.
//
//	backend -port 8080           serve GET /users/{id}
//	backend -port 8080 -stall    accept requests and never answer them
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

type item struct {
	SKU   string  `json:"sku"`
	Qty   int     `json:"qty"`
	Price float64 `json:"price"`
}

type user struct {
	ID       int       `json:"id"`
	Name     string    `json:"name"`
	Email    string    `json:"email"`
	Plan     string    `json:"plan"`
	Tags     []string  `json:"tags"`
	Cart     []item    `json:"cart"`
	Total    float64   `json:"total"`
	ServedAt time.Time `json:"served_at"`
	Request  string    `json:"request_id"`
}

func main() {
	port := flag.Int("port", 0, "port to listen on (127.0.0.1)")
	stall := flag.Bool("stall", false, "accept requests and never answer them")
	flag.Parse()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(*port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
	h := http.HandlerFunc(serveUser)
	if *stall {
		h = func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	}
	if err := http.Serve(ln, h); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

func serveUser(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/users/"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	u := user{
		ID: id, Name: "user" + strconv.Itoa(id), Email: "user" + strconv.Itoa(id) + "@example.com",
		Plan: []string{"free", "team", "enterprise"}[id%3], Tags: []string{"beta", "eu"},
		ServedAt: time.Now(), Request: strconv.FormatUint(rand.Uint64(), 16),
	}
	for i := range 5 {
		it := item{SKU: fmt.Sprintf("sku-%d-%d", id, i), Qty: 1 + (id+i)%4, Price: float64(100+id*7+i*13) / 100}
		u.Cart = append(u.Cart, it)
		u.Total += float64(it.Qty) * it.Price
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(u)
}
