// Command crashy is a test service with two input-triggered crashes that no
// recover can catch (they happen in goroutines the handler starts):
//
//   - POST /items/{id} with "labels" but "tags": null writes to a nil map;
//   - GET /items/{id}?page=N with N ≥ 3 indexes past the pages slice.
//
// Every other request (including those on the same routes) is answered.
// It listens on 127.0.0.1:$PORT (graft proxy mode).
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

type item struct {
	Name   string            `json:"name"`
	Tags   map[string]string `json:"tags"`
	Labels []string          `json:"labels"`
}

var pages = []string{"first", "second", "third"}

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		var it item
		if err := json.NewDecoder(r.Body).Decode(&it); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		done := make(chan int)
		go func() {
			time.Sleep(time.Millisecond) // some work, so requests overlap
			for _, l := range it.Labels {
				it.Tags[l] = "label" // nil map when "tags" was null or absent
			}
			done <- len(it.Tags)
		}()
		n := <-done
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"name":%q,"tags":%d,"pid":%d}`+"\n", r.PathValue("id"), it.Name, n, os.Getpid())
	})
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		page := 0
		if p := r.URL.Query().Get("page"); p != "" {
			page, _ = strconv.Atoi(p)
		}
		done := make(chan string)
		go func() {
			time.Sleep(time.Millisecond)
			done <- pages[page] // out of range for page ≥ 3
		}()
		s := <-done
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"page":%q,"pid":%d}`+"\n", r.PathValue("id"), s, os.Getpid())
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashy:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "crashy listening on", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srv.Serve(ln)
}
