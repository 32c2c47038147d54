package postgres

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/record"
)

// TestTimestampTextMatchesTimeFormat checks the hand-written formatting against the
// standard library's over random instants of years 1 to 9999.
func TestTimestampTextMatchesTimeFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lo := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	hi := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
	tz := record.Type{Kind: record.KindTimestampTZ}
	for range 100000 {
		us := lo + rng.Int64N(hi-lo)
		if rng.IntN(4) == 0 {
			us -= us % 1e6 // whole seconds: no fraction written
		}
		got, err := appendPlain(nil, tz, record.Timestamp(us))
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Replace(time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.999999"), ".000000", "", 1)
		if w := strings.TrimRight(want, "0"); strings.Contains(want, ".") {
			want = strings.TrimSuffix(w, ".")
		}
		// Our fraction is six digits or none; the reference trims zeros.
		g := string(got)
		g = strings.TrimSuffix(g, "+00")
		if i := strings.IndexByte(g, '.'); i >= 0 {
			g = strings.TrimRight(g, "0")
		}
		if g != want {
			t.Fatalf("%d: %q, want %q", us, got, want)
		}
	}
}
