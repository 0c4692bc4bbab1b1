// Package adminhttp holds the conventions every route of a supervisor's
// admin API follows, whichever feature mounts it: JSON answers (indented,
// for people reading them with curl), errors as api.Error, and request
// bodies of at most MaxBody bytes decoded strictly (unknown fields refused),
// so that a malformed request is refused with the reason; and how an admin
// API listens: a unix socket only its owner may use (ListenSocket), or TCP
// behind a bearer token (Bearer).
package adminhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/graftdev/graft/api"
)

// MaxBody bounds a request body.
const MaxBody = 1 << 20

// WriteJSON answers v as JSON with the status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, b = http.StatusInternalServerError, errorBody(fmt.Errorf("encode answer: %w", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// WriteError answers err as an api.Error with the status code.
func WriteError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(errorBody(err), '\n'))
}

func errorBody(err error) []byte {
	b, _ := json.Marshal(api.Error{Version: api.Version, Error: err.Error()})
	return b
}

// Decode decodes the request's JSON body into v; the body is required.
func Decode(r *http.Request, v any) error {
	return decode(r, v, false)
}

// DecodeOptional is Decode for routes whose body may be empty; then v is
// left as it is.
func DecodeOptional(r *http.Request, v any) error {
	return decode(r, v, true)
}

func decode(r *http.Request, v any, optional bool) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(data) > MaxBody {
		return errors.New("body larger than 1 MiB")
	}
	if optional && len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON body: %w", err)
	}
	return nil
}
