package pipeline

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

type harness struct {
	ev  *events
	src *fakeSource
	dst *fakeDest
	st  *fakeStore
	obs *fakeObserver
}

func newHarness(n, batch int) *harness {
	ev := &events{}
	return &harness{
		ev:  ev,
		src: &fakeSource{ev: ev, recs: recs(n), batch: batch},
		dst: &fakeDest{ev: ev},
		st:  newStore(ev),
		obs: &fakeObserver{},
	}
}

func (h *harness) options(f config.Flush) Options {
	return Options{Name: "orders", Source: h.src, Destination: h.dst, Store: h.st, Flush: f, Observer: h.obs}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestSyncCommitsEverythingInOrder(t *testing.T) {
	h := newHarness(30, 3)
	err := Run(context.Background(), h.options(config.Flush{Rows: 7, Interval: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	log := h.ev.all()
	checkOrder(t, log)
	if got := h.dst.durablePositions(); !slices.Equal(got, seq(1, 30)) {
		t.Errorf("durable positions = %v, want 1..30 once each", got)
	}
	if got := h.st.committed("orders"); got != 30 {
		t.Errorf("committed %d, want 30", got)
	}
	flushes := 0
	for _, e := range log {
		if e == "flush" {
			flushes++
		}
	}
	// 30 rows in batches of 3 with a limit of 7 rows: a flush after 9, 18, 27, and the final one.
	if flushes != 4 {
		t.Errorf("%d flushes, want 4: %v", flushes, log)
	}
	if s := h.obs.lastState(); s != StateDone {
		t.Errorf("state %q, want done", s)
	}
	if h.obs.read != 30 || h.obs.written != 30 || posInt(h.obs.committed) != 30 || !h.obs.commitTS.Equal(rec(30).CommitTS) {
		t.Errorf("observer read=%d written=%d committed=%d ts=%v", h.obs.read, h.obs.written, posInt(h.obs.committed), h.obs.commitTS)
	}
	if h.src.closed != 1 || h.dst.closed != 1 {
		t.Errorf("closed source %d times, destination %d times; want once each", h.src.closed, h.dst.closed)
	}
}

func TestResumesAfterCommittedPosition(t *testing.T) {
	h := newHarness(10, 4)
	h.st.pos["orders"] = pos(6)
	if err := Run(context.Background(), h.options(config.Flush{})); err != nil {
		t.Fatal(err)
	}
	if got := posInt(h.src.starts[0]); got != 6 {
		t.Errorf("Read started at %d, want 6", got)
	}
	if got := h.dst.durablePositions(); !slices.Equal(got, seq(7, 10)) {
		t.Errorf("durable %v, want 7..10", got)
	}
}

func TestBlockedDestinationBlocksEmit(t *testing.T) {
	const buffer = 2
	h := newHarness(100, 1)
	h.src.stream = true
	h.dst.block = make(chan struct{})
	h.dst.entered = make(chan struct{}, 1)
	attempts := make(chan int, 100)
	h.src.beforeEmit = func(i int) { attempts <- i }
	o := h.options(config.Flush{Interval: time.Hour})
	o.Buffer = buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()

	<-h.dst.entered // the writer holds batch 0 and is stuck in Write
	// Batches 1 and 2 fill the buffer; the attempt to emit batch 3 must block.
	waitFor(t, attempts, "emit of batch 3", func(i int) bool { return i == buffer+1 })
	time.Sleep(50 * time.Millisecond) // give a broken runtime the chance to let it through
	if got := h.src.emits(); got != buffer+1 {
		t.Fatalf("%d emits returned while the destination was blocked; want %d (1 in Write + %d buffered)", got, buffer+1, buffer)
	}
	cancel()
	close(h.dst.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkOrder(t, h.ev.all())
	// What was emitted before the stop (batches 0..2) is written and committed.
	if got := h.st.committed("orders"); got < buffer+1 {
		t.Errorf("committed %d, want at least %d", got, buffer+1)
	}
}

func TestCancelWritesAndCommitsWhatWasRead(t *testing.T) {
	h := newHarness(5, 1)
	h.src.stream = true
	h.dst.block = make(chan struct{}, 10)
	h.dst.entered = make(chan struct{}, 1)
	all := make(chan struct{})
	h.src.afterAll = func(ctx context.Context) error {
		close(all)
		<-ctx.Done()
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, h.options(config.Flush{Interval: time.Hour})) }()

	<-h.dst.entered // batch 1 is in Write; batches 2..5 wait in the buffer
	<-all
	cancel()
	for range 5 {
		h.dst.block <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	checkOrder(t, h.ev.all())
	if got := h.dst.durablePositions(); !slices.Equal(got, seq(1, 5)) {
		t.Errorf("durable %v, want 1..5", got)
	}
	if got := h.st.committed("orders"); got != 5 {
		t.Errorf("committed %d, want 5", got)
	}
	if got := posInt(h.src.acked); got != 5 {
		t.Errorf("acked %d, want 5", got)
	}
	if s := h.obs.lastState(); s != StateStopped {
		t.Errorf("state %q, want stopped", s)
	}
}

func TestFlushErrorCommitsNothing(t *testing.T) {
	h := newHarness(10, 5)
	h.dst.flushErr = errBoom
	err := Run(context.Background(), h.options(config.Flush{Rows: 5}))
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "pipeline orders: flush:") {
		t.Fatalf("err = %v, want pipeline orders: flush: boom", err)
	}
	for _, e := range h.ev.all() {
		if strings.HasPrefix(e, "commit") || strings.HasPrefix(e, "ack") {
			t.Errorf("%s after a failed flush: %v", e, h.ev.all())
		}
	}
	if h.src.closed != 1 || h.dst.closed != 1 {
		t.Errorf("closed source %d, destination %d times; want once each", h.src.closed, h.dst.closed)
	}
}

func TestFailureStopsFurtherCommits(t *testing.T) {
	cases := []struct {
		name  string
		setup func(h *harness)
		want  string
	}{
		{"write", func(h *harness) { h.dst.writeErr = errBoom }, "pipeline orders: write: boom"},
		{"commit", func(h *harness) { h.st.commitErr = errBoom }, "pipeline orders: commit"},
		{"read", func(h *harness) {
			h.src.afterAll = func(context.Context) error { return errBoom }
		}, "pipeline orders: read: boom"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(10, 2)
			c.setup(h)
			err := Run(context.Background(), h.options(config.Flush{Rows: 4, Interval: time.Hour}))
			if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if connector.IsPermanent(err) {
				t.Error("a plain error came back permanent")
			}
			log := h.ev.all()
			checkOrder(t, log)
			// After a read error nothing else may be committed: the last commit is
			// the one of the rows limit (at 4 or 8), never the final 10.
			if got := h.st.committed("orders"); got == 10 {
				t.Errorf("committed 10 after a failure: %v", log)
			}
		})
	}
}

func TestIntervalFlushWithIdleSource(t *testing.T) {
	h := newHarness(3, 3)
	h.src.stream = true
	h.st.commits = make(chan record.Position, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, h.options(config.Flush{Rows: 1000, Interval: 10 * time.Millisecond})) }()

	// The source sends 3 rows and then nothing: only the interval can flush them.
	waitFor(t, h.st.commits, "interval commit", func(p record.Position) bool { return posInt(p) == 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkOrder(t, h.ev.all())
}

func TestNonIncreasingPositionIsPermanent(t *testing.T) {
	cases := []struct {
		name    string
		recs    []record.Record
		start   int
		wantPos []string
	}{
		{"repeat", []record.Record{rec(1), rec(2), rec(2)}, 0, []string{pos(2).String()}},
		{"backwards across batches", []record.Record{rec(1), rec(3), rec(2)}, 0, []string{pos(2).String(), pos(3).String()}},
		{"at the committed position", []record.Record{rec(4), rec(5), rec(6)}, 5, []string{pos(4).String(), pos(5).String()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(0, 1)
			h.src.recs = c.recs
			h.src.afterAll = func(ctx context.Context) error { <-ctx.Done(); return nil }
			if c.start > 0 {
				h.st.pos["orders"] = pos(c.start)
			}
			// Fake source filters by start; bypass that to emit the poison record.
			h.src.recs = c.recs
			src := &unfilteredSource{fakeSource: h.src}
			o := h.options(config.Flush{Interval: time.Hour})
			o.Source = src
			err := Run(context.Background(), o)
			if !connector.IsPermanent(err) {
				t.Fatalf("err = %v, want permanent", err)
			}
			for _, p := range c.wantPos {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not name position %s", err, p)
				}
			}
		})
	}
}

// unfilteredSource emits every record whatever the start position.
type unfilteredSource struct{ *fakeSource }

func (s *unfilteredSource) Read(ctx context.Context, _ record.Position, emit connector.EmitFunc) error {
	return s.fakeSource.Read(ctx, nil, emit)
}

func TestEmptyBatchesAreIgnored(t *testing.T) {
	h := newHarness(0, 1)
	src := &emptyThenOne{fakeSource: h.src}
	o := h.options(config.Flush{})
	o.Source = src
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if got := h.dst.durablePositions(); !slices.Equal(got, []int{1}) {
		t.Errorf("durable %v, want [1]", got)
	}
	for _, e := range h.ev.all() {
		if e == "write 0 last=-1" {
			t.Errorf("empty batch reached the destination")
		}
	}
}

type emptyThenOne struct{ *fakeSource }

func (s *emptyThenOne) Read(ctx context.Context, _ record.Position, emit connector.EmitFunc) error {
	if err := emit(ctx, nil); err != nil {
		return err
	}
	if err := emit(ctx, []record.Record{}); err != nil {
		return err
	}
	return emit(ctx, []record.Record{rec(1)})
}

func TestSourcePanicBecomesError(t *testing.T) {
	h := newHarness(0, 1)
	h.src.afterAll = func(context.Context) error { panic("decoder bug") }
	err := Run(context.Background(), h.options(config.Flush{}))
	if err == nil || !strings.Contains(err.Error(), "decoder bug") {
		t.Fatalf("err = %v, want the panic as an error", err)
	}
}

// hungSource emits one record and then ignores cancellation until released.
type hungSource struct {
	*fakeSource
	release chan struct{}
}

func (s *hungSource) Read(ctx context.Context, _ record.Position, emit connector.EmitFunc) error {
	if err := emit(ctx, []record.Record{rec(1)}); err != nil {
		return err
	}
	<-s.release
	return nil
}

func TestSourceIgnoringCancelDoesNotHangStop(t *testing.T) {
	h := newHarness(0, 1)
	src := &hungSource{fakeSource: h.src, release: make(chan struct{})}
	defer close(src.release)
	h.dst.entered = make(chan struct{}, 1)
	o := h.options(config.Flush{Interval: time.Hour})
	o.Source = src
	o.StopTimeout = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	<-h.dst.entered // the source has emitted and is now stuck
	cancel()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "did not return from Read") {
		t.Fatalf("err = %v, want a stop failure naming the source", err)
	}
	if h.src.closed != 1 || h.dst.closed != 1 {
		t.Errorf("closed source %d, destination %d times; want once each", h.src.closed, h.dst.closed)
	}
}

func TestCheckpointRecordsAreCommittedButNeverWritten(t *testing.T) {
	h := newHarness(6, 3)
	// Records 3 and 6 carry only a position (6: a source with nothing left to send).
	for i := range h.src.recs {
		if p := posInt(h.src.recs[i].Pos); p == 3 || p == 6 {
			h.src.recs[i] = record.Record{Op: record.OpCheckpoint, Pos: pos(p)}
		}
	}
	if err := Run(context.Background(), h.options(config.Flush{Rows: 100, Interval: time.Hour})); err != nil {
		t.Fatal(err)
	}
	if log := strings.Join(h.ev.all(), "; "); !strings.Contains(log, "flush; commit") {
		t.Errorf("want a flush before the commit, got %s", log)
	}
	if got := h.dst.durablePositions(); !slices.Equal(got, []int{1, 2, 4, 5}) {
		t.Errorf("durable positions = %v, want the data records 1 2 4 5 only", got)
	}
	if got := h.st.committed("orders"); got != 6 {
		t.Errorf("committed %d, want 6 (the checkpoint's position)", got)
	}
}

func TestCheckpointAloneIsCommitted(t *testing.T) {
	h := newHarness(1, 1)
	h.src.recs[0] = record.Record{Op: record.OpCheckpoint, Pos: pos(1)}
	if err := Run(context.Background(), h.options(config.Flush{Rows: 100, Interval: time.Hour})); err != nil {
		t.Fatal(err)
	}
	if got := h.dst.durablePositions(); len(got) != 0 {
		t.Errorf("durable positions = %v, want none", got)
	}
	if got := h.st.committed("orders"); got != 1 {
		t.Errorf("committed %d, want 1", got)
	}
}

// TestBufferBytesBoundsWhatWaits: batches of large records wait for the writer once
// BufferBytes are queued, however few they are, and each is still delivered once; a
// batch larger than the bound waits for an empty buffer instead of never going.
func TestBufferBytesBoundsWhatWaits(t *testing.T) {
	h := newHarness(12, 1)
	big := strings.Repeat("x", 1<<20)
	for i := range h.src.recs {
		h.src.recs[i].After = []record.Value{big}
	}
	h.dst.block = make(chan struct{})
	h.dst.entered = make(chan struct{}, 16)
	var emitted atomic.Int32
	h.src.beforeEmit = func(int) { emitted.Add(1) }
	o := h.options(config.Flush{Rows: 100, Interval: time.Hour})
	o.BufferBytes = 3 << 20 // three records of 1 MiB
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), o) }()
	<-h.dst.entered // the first batch is being written; the buffer fills behind it
	time.Sleep(200 * time.Millisecond)
	// One in the writer, three queued, one blocked in emit.
	if n := emitted.Load(); n > 5 {
		t.Errorf("%d batches of 1 MiB emitted while the writer held one, with a bound of 3 MiB queued", n)
	}
	close(h.dst.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(h.dst.durable); got != 12 {
		t.Fatalf("%d records delivered, want 12", got)
	}

	// A batch of 12 MiB, over the bound, goes all the same.
	h = newHarness(12, 12)
	for i := range h.src.recs {
		h.src.recs[i].After = []record.Value{big}
	}
	o = h.options(config.Flush{Rows: 100, Interval: time.Hour})
	o.BufferBytes = 3 << 20
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if got := len(h.dst.durable); got != 12 {
		t.Fatalf("one batch over the bound: %d records delivered, want 12", got)
	}
}
