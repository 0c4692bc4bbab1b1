package live

import (
	"encoding/json"
	"io"
	"sync"
)

// JSONItem is an Item that hands *v over as JSON, taking mu (which guards
// *v) while it reads or replaces it. Decode replaces *v entirely.
func JSONItem[T any](name string, version int, mu sync.Locker, v *T) Item {
	return Item{
		Name:    name,
		Version: version,
		Encode: func(w io.Writer) error {
			mu.Lock()
			defer mu.Unlock()
			return json.NewEncoder(w).Encode(v)
		},
		Decode: func(r io.Reader) error {
			var nv T
			if err := json.NewDecoder(r).Decode(&nv); err != nil {
				return err
			}
			mu.Lock()
			*v = nv
			mu.Unlock()
			return nil
		},
	}
}
