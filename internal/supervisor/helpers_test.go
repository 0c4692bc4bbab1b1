package supervisor

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

type recorder struct {
	header http.Header
	body   bytes.Buffer
	code   int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

func httptestRequest(method, path string) *http.Request {
	return httptest.NewRequest(method, path, nil)
}
