package live

import (
	"reflect"
	"testing"
)

func fakeEnv(vars map[string]string) osEnv {
	return osEnv{
		getenv:   func(k string) string { return vars[k] },
		unsetenv: func(k string) error { delete(vars, k); return nil },
		getpid:   func() int { return 4242 },
	}
}

func TestParseListenFDs(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    []inheritedFD
		wantErr bool
	}{
		{name: "none", env: map[string]string{}},
		{name: "named", env: map[string]string{"LISTEN_FDS": "2", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "web:admin"},
			want: []inheritedFD{{"web", 3}, {"admin", 4}}},
		{name: "unnamed", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "4242"},
			want: []inheritedFD{{"unknown", 3}}},
		{name: "meant for another process", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "1"}},
		{name: "bad count", env: map[string]string{"LISTEN_FDS": "x", "LISTEN_PID": "4242"}, wantErr: true},
		{name: "bad pid", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "me"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseListenFDs(func(k string) string { return tt.env[k] }, 4242)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewUnsetsProtocolVariables(t *testing.T) {
	env := map[string]string{"LISTEN_FDS": "0", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "", "NOTIFY_SOCKET": "/nonexistent", "GRAFT_GENERATION": "7", "OTHER": "kept"}
	g := newGen(Options{NoSignals: true}, fakeEnv(env))
	if g.Generation() != 7 {
		t.Fatalf("generation %d, want 7", g.Generation())
	}
	for _, k := range []string{"LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s still set: children would inherit it", k)
		}
	}
	if env["OTHER"] != "kept" {
		t.Error("unrelated variable removed")
	}
}
