package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// The fakes below stand in for connectors to test the runtime's ordering; real
// connectors are tested against real servers elsewhere.

func pos(i int) record.Position {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(i))
	return b
}

func posInt(p record.Position) int {
	if len(p) != 8 {
		return -1
	}
	return int(binary.BigEndian.Uint64(p))
}

var testSchema = &record.Schema{Namespace: "public", Table: "orders"}

func rec(i int) record.Record {
	return record.Record{Op: record.OpCreate, Schema: testSchema, Pos: pos(i),
		CommitTS: time.Unix(int64(1700000000+i), 0).UTC(), After: []record.Value{int64(i)}}
}

// events is the shared, ordered log of calls made by the runtime.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// checkOrder asserts the delivery order (docs/design.md, "Delivery order") on an event
// log: a commit comes right after a flush and names the last written position, an ack
// comes right after the commit of the same position, and nothing is written between a
// flush and its commit.
func checkOrder(t *testing.T, log []string) {
	t.Helper()
	lastWritten := 0
	prev := ""
	for i, ev := range log {
		var n, p int
		switch {
		case strings.HasPrefix(ev, "write "):
			fmt.Sscanf(ev, "write %d last=%d", &n, &p)
			if prev == "flush" {
				t.Errorf("event %d: write between flush and commit: %v", i, log)
			}
			lastWritten = p
		case strings.HasPrefix(ev, "commit "):
			fmt.Sscanf(ev, "commit %d", &p)
			if prev != "flush" {
				t.Errorf("event %d: commit %d not preceded by a flush (prev %q): %v", i, p, prev, log)
			}
			if p != lastWritten {
				t.Errorf("event %d: committed %d, last written %d", i, p, lastWritten)
			}
		case strings.HasPrefix(ev, "ack "):
			fmt.Sscanf(ev, "ack %d", &p)
			if prev != fmt.Sprintf("commit %d", p) {
				t.Errorf("event %d: ack %d not right after its commit (prev %q)", i, p, prev)
			}
		}
		prev = ev
	}
}

// fakeSource emits recs (those after the start position) in batches of batch, then
// returns nil (sync) or waits for ctx (stream).
type fakeSource struct {
	ev     *events
	recs   []record.Record
	batch  int
	stream bool
	// beforeEmit, when set, is called with the batch number before each emit.
	beforeEmit func(i int)
	// afterAll, when set, is what Read returns after emitting everything (instead of
	// nil or waiting); it may block.
	afterAll func(ctx context.Context) error

	mu       sync.Mutex
	starts   []record.Position
	acked    record.Position
	emitted  int // emit calls that returned nil
	closed   int
	ackCh    chan record.Position
	readBusy bool
}

func (s *fakeSource) Read(ctx context.Context, start record.Position, emit connector.EmitFunc) error {
	s.mu.Lock()
	s.starts = append(s.starts, start)
	s.readBusy = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.readBusy = false
		s.mu.Unlock()
	}()
	var todo []record.Record
	for _, r := range s.recs {
		if r.Pos.Compare(start) > 0 {
			todo = append(todo, r)
		}
	}
	for i := 0; len(todo) > 0; i++ {
		n := min(s.batch, len(todo))
		b := append([]record.Record(nil), todo[:n]...)
		todo = todo[n:]
		if s.beforeEmit != nil {
			s.beforeEmit(i)
		}
		if err := emit(ctx, b); err != nil {
			return fmt.Errorf("fake source: emit: %w", err)
		}
		s.mu.Lock()
		s.emitted++
		s.mu.Unlock()
	}
	if s.afterAll != nil {
		return s.afterAll(ctx)
	}
	if s.stream {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (s *fakeSource) Ack(_ context.Context, p record.Position) error {
	s.ev.add("ack %d", posInt(p))
	s.mu.Lock()
	s.acked = p
	ch := s.ackCh
	s.mu.Unlock()
	if ch != nil {
		select {
		case ch <- p:
		default:
		}
	}
	return nil
}

func (s *fakeSource) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readBusy {
		panic("fake source: Close called while Read is running")
	}
	s.closed++
	return nil
}

func (s *fakeSource) emits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.emitted
}

// fakeDest buffers written records and moves them to durable on Flush.
type fakeDest struct {
	ev       *events
	writeErr error
	flushErr error
	// block, when set, makes every Write wait for a value (or ctx's end).
	block   chan struct{}
	entered chan struct{} // receives (non-blocking) when a Write starts

	mu      sync.Mutex
	buf     []record.Record
	durable []record.Record
	closed  int
}

func (d *fakeDest) Write(ctx context.Context, recs []record.Record) error {
	if d.entered != nil {
		select {
		case d.entered <- struct{}{}:
		default:
		}
	}
	if d.block != nil {
		select {
		case <-d.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if d.writeErr != nil {
		return d.writeErr
	}
	d.ev.add("write %d last=%d", len(recs), posInt(recs[len(recs)-1].Pos))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf = append(d.buf, recs...)
	return nil
}

func (d *fakeDest) Buffered() (int64, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return int64(len(d.buf)), int64(100 * len(d.buf))
}

func (d *fakeDest) Flush(context.Context) error {
	if d.flushErr != nil {
		d.ev.add("flush failed")
		return d.flushErr
	}
	d.ev.add("flush")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.durable = append(d.durable, d.buf...)
	d.buf = nil
	return nil
}

func (d *fakeDest) Close(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed++
	return nil
}

func (d *fakeDest) durablePositions() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]int, len(d.durable))
	for i, r := range d.durable {
		out[i] = posInt(r.Pos)
	}
	return out
}

// fakeStore is an in-memory Store.
type fakeStore struct {
	ev        *events
	commitErr error
	commits   chan record.Position // receives (non-blocking) each commit

	mu  sync.Mutex
	pos map[string]record.Position
}

func newStore(ev *events) *fakeStore {
	return &fakeStore{ev: ev, pos: map[string]record.Position{}}
}

func (s *fakeStore) Load(_ context.Context, name string) (record.Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos[name], nil
}

func (s *fakeStore) Commit(_ context.Context, name string, p record.Position) error {
	if s.commitErr != nil {
		return s.commitErr
	}
	s.ev.add("commit %d", posInt(p))
	s.mu.Lock()
	s.pos[name] = append(record.Position(nil), p...)
	ch := s.commits
	s.mu.Unlock()
	if ch != nil {
		select {
		case ch <- p:
		default:
		}
	}
	return nil
}

func (s *fakeStore) Reset(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pos, name)
	return nil
}

func (s *fakeStore) List(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.pos {
		out = append(out, n)
	}
	return out, nil
}

func (s *fakeStore) committed(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pos[name]; ok {
		return posInt(p)
	}
	return 0
}

// fakeObserver records states and counts.
type fakeObserver struct {
	connector.NopStatus
	mu        sync.Mutex
	states    []string
	errs      []error
	read      int
	written   int
	flushes   int
	committed record.Position
	commitTS  time.Time
	stateCh   chan string // receives (non-blocking) each state
}

func (o *fakeObserver) Read(n int) { o.mu.Lock(); o.read += n; o.mu.Unlock() }
func (o *fakeObserver) Written(n int, _ int64) {
	o.mu.Lock()
	o.written += n
	o.mu.Unlock()
}
func (o *fakeObserver) Flushed(int64, int64, time.Duration) {
	o.mu.Lock()
	o.flushes++
	o.mu.Unlock()
}
func (o *fakeObserver) Committed(p record.Position, ts time.Time) {
	o.mu.Lock()
	o.committed, o.commitTS = p, ts
	o.mu.Unlock()
}
func (o *fakeObserver) SetState(s string, err error) {
	o.mu.Lock()
	o.states = append(o.states, s)
	o.errs = append(o.errs, err)
	ch := o.stateCh
	o.mu.Unlock()
	if ch != nil {
		select {
		case ch <- s:
		default:
		}
	}
}

func (o *fakeObserver) lastState() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.states) == 0 {
		return ""
	}
	return o.states[len(o.states)-1]
}

func (o *fakeObserver) hasState(s string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, x := range o.states {
		if x == s {
			return true
		}
	}
	return false
}

// waitFor fails the test if ch yields nothing matching ok within a generous bound;
// the bound only keeps a broken runtime from hanging the test.
func waitFor[T any](t *testing.T, ch <-chan T, what string, ok func(T) bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case v := <-ch:
			if ok(v) {
				return
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func recs(n int) []record.Record {
	out := make([]record.Record, n)
	for i := range out {
		out[i] = rec(i + 1)
	}
	return out
}

var errBoom = errors.New("boom")
