package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// txDest is a fakeDest that keeps its position with its data, as a database target does.
type txDest struct {
	*fakeDest
	committed record.Position
	flushedAt []record.Position
}

func (d *txDest) Committed(context.Context) (record.Position, error) { return d.committed, nil }

func (d *txDest) FlushAt(ctx context.Context, pos record.Position) error {
	if err := d.Flush(ctx); err != nil {
		return err
	}
	d.committed = pos
	d.flushedAt = append(d.flushedAt, pos)
	return nil
}

func TestTransactionalDestinationPositionWins(t *testing.T) {
	for _, c := range []struct {
		name          string
		store, target int // committed positions, 0 for none
		reset         bool
		wantStart     int // first record written
		wantErr       string
	}{
		{name: "agree", store: 10, target: 10, wantStart: 11},
		{name: "target ahead of a stale store", store: 10, target: 20, wantStart: 21},
		{name: "target ahead of an empty store", store: 0, target: 20, wantStart: 21},
		{name: "target behind the store", store: 20, target: 10, wantErr: "lost commits"},
		{name: "target empty, store not", store: 20, target: 0, wantErr: "holds no position"},
		{name: "target behind a reset", store: 20, target: 10, reset: true, wantStart: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(30, 3)
			dst := &txDest{fakeDest: h.dst}
			if c.target > 0 {
				dst.committed = pos(c.target)
			}
			if c.store > 0 {
				h.st.pos["orders"] = pos(c.store)
			}
			if c.reset {
				m, err := ResetMarker(h.st.pos["orders"])
				if err != nil {
					t.Fatal(err)
				}
				h.st.pos["orders"] = m
			}
			o := h.options(config.Flush{Rows: 7, Interval: time.Hour})
			o.Destination = dst
			err := Run(context.Background(), o)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !connector.IsPermanent(err) {
					t.Fatalf("Run = %v, want a permanent error about %q", err, c.wantErr)
				}
				if len(dst.durable) != 0 {
					t.Fatalf("wrote %d records after refusing to start", len(dst.durable))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(dst.durable) == 0 {
				t.Fatal("nothing written")
			}
			_, first, _ := SplitEpoch(dst.durable[0].Pos)
			if got := posInt(first); got != c.wantStart {
				t.Errorf("first record written %d, want %d", got, c.wantStart)
			}
			last := dst.flushedAt[len(dst.flushedAt)-1]
			if last.Compare(h.st.pos["orders"]) != 0 {
				t.Errorf("the target committed %s last, the store %s", last, h.st.pos["orders"])
			}
			if last.Compare(dst.durable[len(dst.durable)-1].Pos) != 0 {
				t.Errorf("FlushAt got %s, the last record written is at %s", last, dst.durable[len(dst.durable)-1].Pos)
			}
		})
	}
}

// reloadDest is a txDest whose tables keep rows by key: it refuses a reload.
type reloadDest struct {
	*txDest
	asked int
}

func (d *reloadDest) Reload(context.Context) error {
	d.asked++
	return connector.Permanent(errors.New("merge tables hold the earlier load"))
}

// TestResetOverAReplicaAsksTheDestination: the start of a reset epoch over a target
// holding an earlier position asks a Reloadable destination, whose refusal stops the
// run before anything is written; over an empty target it does not ask.
func TestResetOverAReplicaAsksTheDestination(t *testing.T) {
	for _, held := range []bool{true, false} {
		h := newHarness(30, 3)
		dst := &reloadDest{txDest: &txDest{fakeDest: h.dst}}
		h.st.pos["orders"] = pos(20)
		if held {
			dst.committed = pos(10)
		}
		m, err := ResetMarker(h.st.pos["orders"])
		if err != nil {
			t.Fatal(err)
		}
		h.st.pos["orders"] = m
		o := h.options(config.Flush{Rows: 7, Interval: time.Hour})
		o.Destination = dst
		err = Run(context.Background(), o)
		switch {
		case held && (err == nil || !strings.Contains(err.Error(), "earlier load") || len(dst.durable) != 0):
			t.Errorf("reset over a held target: Run = %v, %d records written; want the destination's refusal, none written", err, len(dst.durable))
		case !held && (err != nil || dst.asked != 0 || len(dst.durable) == 0):
			t.Errorf("reset over an empty target: Run = %v, asked %d times, %d records written; want a load without asking", err, dst.asked, len(dst.durable))
		}
	}
}
