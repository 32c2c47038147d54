package pipeline

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

func hexPos(t *testing.T, s string) record.Position {
	t.Helper()
	p, err := record.ParsePosition(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSplitEpoch(t *testing.T) {
	for _, tc := range []struct {
		pos, src string
		epoch    uint32
		err      string
	}{
		{pos: "", src: "", epoch: 0},
		{pos: "020000000100000002", src: "020000000100000002", epoch: 0},
		{pos: "ff00000001", src: "", epoch: 1},
		{pos: "ff00000002020000000100000002", src: "020000000100000002", epoch: 2},
		{pos: "ff0000", err: "is 3 bytes long"},
		{pos: "ff00000000", err: "reset epoch 0"},
		{pos: "ff0000000001", err: "reset epoch 0"},
	} {
		epoch, src, err := SplitEpoch(hexPos(t, tc.pos))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SplitEpoch(%s) = %v, want an error containing %q", tc.pos, err, tc.err)
			}
			continue
		}
		if err != nil || epoch != tc.epoch || src.String() != tc.src {
			t.Errorf("SplitEpoch(%s) = %d, %s, %v; want %d, %s", tc.pos, epoch, src, err, tc.epoch, tc.src)
		}
		if tc.src == "" && tc.epoch == 0 {
			continue
		}
		if back := WithEpoch(epoch, src); back.String() != tc.pos {
			t.Errorf("WithEpoch(SplitEpoch(%s)) = %s", tc.pos, back)
		}
	}
}

func TestResetMarkerSortsAfterEverythingBeforeAndBeforeItsEpoch(t *testing.T) {
	stored := []record.Position{
		nil,
		hexPos(t, "01000000000000000100000001"), // a postgres snapshot position
		hexPos(t, "02ffffffffffffffffffffffff"), // the highest stream position a source may use
	}
	for _, s := range stored {
		m, err := ResetMarker(s)
		if err != nil {
			t.Fatal(err)
		}
		if m.String() != "ff00000001" {
			t.Errorf("ResetMarker(%s) = %s, want ff00000001", s, m)
		}
		if m.Compare(s) <= 0 {
			t.Errorf("marker %s does not sort after %s", m, s)
		}
	}
	prev := hexPos(t, "ff00000001fe")
	m, err := ResetMarker(prev)
	if err != nil {
		t.Fatal(err)
	}
	if m.String() != "ff00000002" || m.Compare(prev) <= 0 {
		t.Errorf("ResetMarker(%s) = %s, want ff00000002 sorting after it", prev, m)
	}
	first := WithEpoch(2, record.Position{0x00})
	if m.Compare(first) >= 0 {
		t.Errorf("marker %s does not sort before the first record %s of its epoch", m, first)
	}
	if _, err := ResetMarker(hexPos(t, "ffffffffff")); err == nil {
		t.Error("ResetMarker after the last epoch: no error")
	}
	if _, err := ResetMarker(hexPos(t, "ff01")); err == nil {
		t.Error("ResetMarker of a damaged position: no error")
	}
}

func TestNewEpochStartsSourceFromScratchAndPrefixesEveryPosition(t *testing.T) {
	h := newHarness(10, 3)
	marker, err := ResetMarker(WithEpoch(1, pos(40)))
	if err != nil {
		t.Fatal(err)
	}
	h.st.pos["orders"] = marker
	if err := Run(context.Background(), h.options(config.Flush{Rows: 4})); err != nil {
		t.Fatal(err)
	}
	if len(h.src.starts) != 1 || h.src.starts[0] != nil {
		t.Fatalf("Read started at %v, want nil (the source sees no epoch)", h.src.starts)
	}
	if len(h.dst.durable) != 10 {
		t.Fatalf("%d records durable, want 10", len(h.dst.durable))
	}
	for i, r := range h.dst.durable {
		want := WithEpoch(2, pos(i+1))
		if !bytes.Equal(r.Pos, want) {
			t.Errorf("record %d at %s, want %s", i, r.Pos, want)
		}
	}
	if got, want := h.st.pos["orders"], WithEpoch(2, pos(10)); !bytes.Equal(got, want) {
		t.Errorf("committed %s, want %s", got, want)
	}
	if posInt(h.src.acked) != 10 {
		t.Errorf("source acked %s, want its own position %s", h.src.acked, pos(10))
	}
}

func TestResumeInsideAnEpochStartsSourceAtItsOwnPosition(t *testing.T) {
	h := newHarness(10, 4)
	h.st.pos["orders"] = WithEpoch(3, pos(6))
	if err := Run(context.Background(), h.options(config.Flush{})); err != nil {
		t.Fatal(err)
	}
	if got := posInt(h.src.starts[0]); got != 6 {
		t.Errorf("Read started at %s, want the source's %s", h.src.starts[0], pos(6))
	}
	if len(h.dst.durable) != 4 || !bytes.Equal(h.dst.durable[0].Pos, WithEpoch(3, pos(7))) {
		t.Errorf("durable %d records, first at %v; want 4 from %s", len(h.dst.durable), h.dst.durable, WithEpoch(3, pos(7)))
	}
}

func TestSourcePositionWithReservedByteIsPermanent(t *testing.T) {
	for _, epoch := range []uint32{0, 1} {
		h := newHarness(5, 5)
		h.src.recs[2].Pos = record.Position{0xff, 0, 0, 0, 9}
		if epoch > 0 {
			h.st.pos["orders"] = WithEpoch(epoch, nil)
		}
		err := Run(context.Background(), h.options(config.Flush{}))
		if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "reserves for reset epochs") {
			t.Errorf("epoch %d: Run = %v, want a permanent error about the reserved byte", epoch, err)
		}
		if len(h.dst.durable) != 0 {
			t.Errorf("epoch %d: %d records made durable from a batch with a reserved position", epoch, len(h.dst.durable))
		}
	}
}

func TestDamagedStoredEpochIsPermanent(t *testing.T) {
	h := newHarness(3, 3)
	h.st.pos["orders"] = record.Position{0xff, 1}
	err := Run(context.Background(), h.options(config.Flush{}))
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "offsets reset") {
		t.Fatalf("Run = %v, want a permanent error naming offsets reset", err)
	}
	if len(h.src.starts) != 0 {
		t.Errorf("source was started at %v", h.src.starts)
	}
}
