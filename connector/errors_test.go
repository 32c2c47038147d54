package connector

import (
	"errors"
	"fmt"
	"testing"
)

func TestPermanentSurvivesWrapping(t *testing.T) {
	base := errors.New("table public.x does not exist")
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", Permanent(base), true},
		{"wrapped after marking", fmt.Errorf("pipeline orders: read: %w", Permanent(base)), true},
		{"joined", errors.Join(errors.New("other"), Permanent(base)), true},
	}
	for _, c := range cases {
		if got := IsPermanent(c.err); got != c.want {
			t.Errorf("%s: IsPermanent = %v, want %v", c.name, got, c.want)
		}
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if p := Permanent(base); !errors.Is(p, base) || p.Error() != base.Error() {
		t.Errorf("Permanent hides the cause: %v", p)
	}
}
