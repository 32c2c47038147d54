package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/record"
)

// varyingSource is a fakeSource whose replays may differ.
type varyingSource struct{ *fakeSource }

func (varyingSource) ReplayVaries() bool { return true }

// resumingDest is a fakeDest that records Resume calls.
type resumingDest struct {
	*fakeDest
	resumed []record.Position
}

func (d *resumingDest) Resume(_ context.Context, committed record.Position) error {
	d.resumed = append(d.resumed, committed)
	return nil
}

// The destination is resumed before any write, with the committed position, only for
// a source whose replays vary and only when something was committed.
func TestResumeBeforeTheFirstWriteOfAVaryingSource(t *testing.T) {
	for _, c := range []struct {
		name      string
		varying   bool
		committed int
		want      int // Resume calls
	}{{"varying, committed", true, 10, 1}, {"varying, nothing committed", true, 0, 0}, {"stable", false, 10, 0}} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(30, 3)
			dst := &resumingDest{fakeDest: h.dst}
			o := h.options(config.Flush{Rows: 7, Interval: time.Hour})
			o.Destination = dst
			if c.varying {
				o.Source = varyingSource{h.src}
			}
			if c.committed > 0 {
				h.st.pos["orders"] = recs(c.committed)[c.committed-1].Pos
			}
			if err := Run(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			if len(dst.resumed) != c.want {
				t.Fatalf("Resume called %d times, want %d", len(dst.resumed), c.want)
			}
			if c.want == 1 && dst.resumed[0].Compare(h.st.pos["orders"]) == 0 {
				t.Errorf("Resume got the final position, not the one the run started from")
			}
		})
	}
}
