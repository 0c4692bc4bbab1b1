package instrument

import "testing"

func TestRaceFlag(t *testing.T) {
	for _, tc := range []struct {
		flags []string
		want  bool
	}{
		{nil, false},
		{[]string{"-mod=mod", "-v"}, false},
		{[]string{"-race"}, true},
		{[]string{"--race"}, true},
		{[]string{"-race=true"}, true},
		{[]string{"-race=false"}, false},
		{[]string{"-tags", "race"}, false},
	} {
		if got := raceFlag(tc.flags); got != tc.want {
			t.Errorf("raceFlag(%q) = %v, want %v", tc.flags, got, tc.want)
		}
	}
}
