package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"sync"

	"github.com/graftdev/graft/live"
)

// A server that keeps its sessions across graft upgrades. Run alone it
// binds 127.0.0.1:8080; under `graft run --listen web=...` it takes the
// inherited socket, receives the previous generation's sessions before it
// is ready, and drains without losing a request.
func Example() {
	var (
		mu       sync.Mutex
		sessions = map[string]string{}
	)
	live.Register(live.JSONItem("sessions", 1, &mu, &sessions))
	ln, err := live.Listen("web", "127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	if err := live.Ready(); err != nil {
		log.Fatal(err) // exit non-zero: the supervisor keeps the old generation
	}
	mux := http.NewServeMux()
	mux.Handle("POST /login", live.Mutating(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sessions[r.FormValue("user")] = r.FormValue("token")
		mu.Unlock()
	})))
	if err := live.Serve(ln, mux); err != nil {
		log.Fatal(err)
	}
	// Serve returned: this generation has drained and may exit.
}

// Version 2 of an item renamed a field and added one; the migration turns
// a predecessor's version-1 encoding into version 2, and the down migration
// lets the version-1 program take the state back if the upgrade is rolled
// back.
func ExampleGen_Migrate() {
	type userV2 struct {
		FullName string `json:"full_name"` // was "name" in version 1
		Admin    bool   `json:"admin"`     // new in version 2
	}
	var (
		mu    sync.Mutex
		users map[string]userV2
	)
	g := live.New(live.Options{})
	g.Register(live.JSONItem("users", 2, &mu, &users))
	g.Migrate("users", 1, func(old []byte) ([]byte, error) {
		var v1 map[string]struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(old, &v1); err != nil {
			return nil, err
		}
		v2 := map[string]userV2{}
		for id, u := range v1 {
			v2[id] = userV2{FullName: u.Name}
		}
		return json.Marshal(v2)
	})
	g.MigrateDown("users", 2, func(cur []byte) ([]byte, error) {
		var v2 map[string]userV2
		if err := json.Unmarshal(cur, &v2); err != nil {
			return nil, err
		}
		v1 := map[string]map[string]string{}
		for id, u := range v2 {
			v1[id] = map[string]string{"name": u.FullName}
		}
		return json.Marshal(v1)
	})
}

// Update guards mutations outside HTTP handlers: during a handoff it waits,
// and once the state belongs to the successor it refuses (ErrMoved) rather
// than change a copy that nobody will see.
func ExampleGen_Update() {
	g := live.New(live.Options{NoSignals: true})
	defer g.Close()
	var jobs int
	err := g.Update(context.Background(), func() error {
		jobs++
		return nil
	})
	fmt.Println(jobs, err)
	// Output: 1 <nil>
}

// Without a supervisor, Listen binds the default address, so the same
// binary runs anywhere.
func ExampleGen_Listen() {
	g := live.New(live.Options{NoSignals: true})
	defer g.Close()
	ln, err := g.Listen("web", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	fmt.Println(ln.Addr().Network(), g.Supervised())
	// Output: tcp false
}
