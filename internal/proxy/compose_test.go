package proxy

import (
	"net/http"
	"slices"
	"testing"
)

func TestCompose(t *testing.T) {
	var calls []string
	inspect := func(name string, answer bool) func(*Request) *Answer {
		return func(*Request) *Answer {
			calls = append(calls, "inspect "+name)
			if answer {
				return &Answer{Status: http.StatusServiceUnavailable}
			}
			return nil
		}
	}
	observe := func(name string) func(*Request, *Response) {
		return func(*Request, *Response) { calls = append(calls, "observe "+name) }
	}
	tests := []struct {
		name        string
		hooks       []Hooks
		wantAnswer  bool
		wantBody    bool
		wantCalls   []string
		wantInspect bool
	}{
		{name: "none", wantCalls: nil},
		{
			name:        "first answer wins",
			hooks:       []Hooks{{Inspect: inspect("a", true), InspectBody: true}, {Inspect: inspect("b", true), Observe: observe("b")}},
			wantAnswer:  true,
			wantBody:    true,
			wantInspect: true,
			wantCalls:   []string{"inspect a", "observe b"},
		},
		{
			name:        "all inspect when none answers, all observe",
			hooks:       []Hooks{{Inspect: inspect("a", false), Observe: observe("a")}, {Observe: observe("b")}, {Inspect: inspect("c", false)}},
			wantInspect: true,
			wantCalls:   []string{"inspect a", "inspect c", "observe a", "observe b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls = nil
			h := Compose(tt.hooks...)
			if (h.Inspect != nil) != tt.wantInspect {
				t.Fatalf("Inspect set = %v, want %v", h.Inspect != nil, tt.wantInspect)
			}
			if h.InspectBody != tt.wantBody {
				t.Errorf("InspectBody = %v, want %v", h.InspectBody, tt.wantBody)
			}
			if h.Inspect != nil {
				if got := h.Inspect(&Request{}) != nil; got != tt.wantAnswer {
					t.Errorf("answered = %v, want %v", got, tt.wantAnswer)
				}
			}
			if h.Observe != nil {
				h.Observe(&Request{}, &Response{})
			}
			if !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("calls = %q, want %q", calls, tt.wantCalls)
			}
		})
	}
}
