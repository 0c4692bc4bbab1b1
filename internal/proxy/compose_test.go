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
	admit := func(name string, answer bool) func(*View) *Answer {
		return func(v *View) *Answer {
			calls = append(calls, "admit "+name)
			if answer {
				return &Answer{Status: http.StatusServiceUnavailable}
			}
			return nil
		}
	}
	complete := func(name string) func(*View, *Response) {
		return func(*View, *Response) { calls = append(calls, "complete "+name) }
	}
	tests := []struct {
		name        string
		hooks       []Hooks
		wantAnswer  bool
		wantBody    bool
		wantCalls   []string
		wantInspect bool
		wantAdmit   bool // the merged set has Admit and Complete, not Inspect and Observe
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
		{
			name:      "inspect and admit in order, observe and complete in order",
			hooks:     []Hooks{{Inspect: inspect("a", false), Observe: observe("a")}, {Admit: admit("b", false), Complete: complete("b"), InspectBody: true}, {Observe: observe("c")}},
			wantBody:  true,
			wantAdmit: true,
			wantCalls: []string{"inspect a", "admit b", "observe a", "complete b", "observe c"},
		},
		{
			name:       "an admit's answer stops the later inspects",
			hooks:      []Hooks{{Admit: admit("a", true)}, {Inspect: inspect("b", true), Observe: observe("b")}},
			wantAdmit:  true,
			wantAnswer: true,
			wantCalls:  []string{"admit a", "observe b"},
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
			if (h.Admit != nil) != tt.wantAdmit {
				t.Fatalf("Admit set = %v, want %v", h.Admit != nil, tt.wantAdmit)
			}
			if h.Inspect != nil {
				if got := h.Inspect(&Request{}) != nil; got != tt.wantAnswer {
					t.Errorf("answered = %v, want %v", got, tt.wantAnswer)
				}
			}
			x := &exchange{cc: &clientConn{}} // an empty request, for the wrapped Inspects' copies
			if h.Admit != nil {
				if got := h.Admit(&View{x: x}) != nil; got != tt.wantAnswer {
					t.Errorf("answered = %v, want %v", got, tt.wantAnswer)
				}
			}
			if h.Observe != nil {
				h.Observe(&Request{}, &Response{})
			}
			if h.Complete != nil {
				h.Complete(&View{x: x, done: true}, &Response{})
			}
			if !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("calls = %q, want %q", calls, tt.wantCalls)
			}
		})
	}
}
