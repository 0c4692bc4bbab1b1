package adminhttp

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/graftdev/graft/api"
)

func TestDecode(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	tests := []struct {
		name     string
		body     string
		optional bool
		want     string // name decoded
		wantErr  string // substring; "" means success
	}{
		{name: "valid", body: `{"name":"x"}`, want: "x"},
		{name: "empty required", body: "", wantErr: "malformed JSON body"},
		{name: "empty optional", body: " \n", optional: true},
		{name: "unknown field", body: `{"name":"x","extra":1}`, wantErr: "unknown field"},
		{name: "not JSON", body: `name=x`, wantErr: "malformed JSON body"},
		{name: "too large", body: `{"name":"` + strings.Repeat("a", MaxBody) + `"}`, wantErr: "larger than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			var b body
			decode := Decode
			if tt.optional {
				decode = DecodeOptional
			}
			err := decode(r, &b)
			if tt.wantErr == "" {
				if err != nil || b.Name != tt.want {
					t.Fatalf("got %q, %v; want %q, nil", b.Name, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestWriteErrorIsAnAPIError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, http.StatusConflict, errors.New("busy"))
	var e api.Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusConflict || e.Error != "busy" || e.Version != api.Version {
		t.Fatalf("code %d, body %+v", w.Code, e)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestWriteJSONUnencodable(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusOK, map[string]any{"f": func() {}})
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "encode answer") {
		t.Fatalf("code %d, body %s", w.Code, w.Body.String())
	}
}
