package conformance_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/conformance"
	"github.com/connectd/connectd/record"
)

// The suite's own tests run it against an in-memory source and destination: the
// correct ones must pass, and each deliberately broken one must fail the check
// about what it breaks. A suite that cannot fail proves nothing.

// flaw is one way the in-memory connectors break the contract.
type flaw int

const (
	correct          flaw = iota
	outOfOrder            // the second record of a batch sorts before the first
	repeatedPosition      // the second record of a batch repeats the first's position
	reemitStart           // a Read from start emits the record at start again
	ackPastPosition       // Ack confirms two records more than it was given
	swallowEmitError      // a failed emit ends Read with nil
	leakGoroutine         // Read starts a goroutine that Close does not end
	appendOnFlush         // the destination appends each flush to one file: a replay doubles
	durableOnWrite        // the destination stores at Write, before Flush: a replay doubles
)

var memSchema = record.NewSchema("mem", "rows", []record.Column{
	{Name: "id", Type: record.Type{Kind: record.KindInt64}, Key: true},
})

// memServer is the source's side: a table that only grows, and how far the
// source's acks have confirmed it (a Read cannot go back before that, as a
// replication slot cannot).
type memServer struct {
	mu        sync.Mutex
	rows      int
	confirmed int
}

func pos(n int) record.Position {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b[:]
}

type memSourceDriver struct{ flaw flaw }

func (d memSourceDriver) Setup(context.Context, testing.TB) (conformance.SourceFixture, error) {
	return &memSourceFixture{flaw: d.flaw, srv: &memServer{}}, nil
}

type memSourceFixture struct {
	flaw flaw
	srv  *memServer
}

func (f *memSourceFixture) Open(_ context.Context, mode connector.Mode) (connector.Source, error) {
	return &memSource{flaw: f.flaw, srv: f.srv, mode: mode, stop: make(chan struct{})}, nil
}

func (f *memSourceFixture) Insert(_ context.Context, n int) error {
	f.srv.mu.Lock()
	f.srv.rows += n
	f.srv.mu.Unlock()
	return nil
}

type memSource struct {
	flaw flaw
	srv  *memServer
	mode connector.Mode
	stop chan struct{}
}

func (s *memSource) Read(ctx context.Context, start record.Position, emit connector.EmitFunc) error {
	next := 0 // rows delivered before start
	if start != nil {
		next = int(binary.BigEndian.Uint64(start))
	}
	s.srv.mu.Lock()
	next = max(next, s.srv.confirmed)
	end := s.srv.rows
	s.srv.mu.Unlock()
	if s.flaw == leakGoroutine {
		go func() { <-make(chan struct{}) }()
	}
	first := true
	for {
		s.srv.mu.Lock()
		avail := s.srv.rows
		s.srv.mu.Unlock()
		if s.mode == connector.ModeSync {
			if next >= end {
				return nil
			}
			avail = end
		}
		if next >= avail {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
				continue
			}
		}
		var recs []record.Record
		if first && start != nil && s.flaw == reemitStart {
			recs = append(recs, s.rec(next-1))
		}
		for i := next; i < min(next+7, avail); i++ {
			recs = append(recs, s.rec(i))
		}
		if len(recs) > 1 {
			switch s.flaw {
			case outOfOrder:
				recs[0].Pos, recs[1].Pos = recs[1].Pos, recs[0].Pos
			case repeatedPosition:
				recs[1].Pos = recs[0].Pos
			}
		}
		if err := emit(ctx, recs); err != nil {
			if s.flaw == swallowEmitError {
				return nil
			}
			return fmt.Errorf("mem: emit: %w", err)
		}
		next, first = min(next+7, avail), false
	}
}

// rec is row i: its position is the count of rows up to and including it.
func (s *memSource) rec(i int) record.Record {
	return record.Record{Op: record.OpCreate, Schema: memSchema, After: []record.Value{int64(i)}, Pos: pos(i + 1), CommitTS: time.Unix(int64(i), 0).UTC()}
}

func (s *memSource) Ack(_ context.Context, p record.Position) error {
	n := int(binary.BigEndian.Uint64(p))
	if s.flaw == ackPastPosition {
		n += 2
	}
	s.srv.mu.Lock()
	s.srv.confirmed = max(s.srv.confirmed, n)
	s.srv.mu.Unlock()
	return nil
}

func (s *memSource) Close(context.Context) error { close(s.stop); return nil }

// memLake is the destination's side: files by name, each a list of stored records.
type memLake struct {
	mu    sync.Mutex
	files map[string][]conformance.Stored
}

type memDestinationDriver struct{ flaw flaw }

func (d memDestinationDriver) Setup(context.Context, testing.TB) (conformance.DestinationFixture, error) {
	return &memDestinationFixture{flaw: d.flaw, lake: &memLake{files: map[string][]conformance.Stored{}}}, nil
}

type memDestinationFixture struct {
	flaw flaw
	lake *memLake
}

func (f *memDestinationFixture) Open(context.Context) (connector.Destination, error) {
	return &memDestination{flaw: f.flaw, lake: f.lake}, nil
}

func (f *memDestinationFixture) ReadBack(context.Context) ([]conformance.Stored, error) {
	f.lake.mu.Lock()
	defer f.lake.mu.Unlock()
	var out []conformance.Stored
	for _, recs := range f.lake.files {
		out = append(out, recs...)
	}
	return out, nil
}

// memDestination stores each flush as one file named after its first position, so
// that a replay replaces what it rewrites (unless broken).
type memDestination struct {
	flaw flaw
	lake *memLake
	buf  []conformance.Stored
	sent int // durableOnWrite: rows written since the last Flush
}

func (d *memDestination) Write(_ context.Context, recs []record.Record) error {
	for _, r := range recs {
		s := conformance.Stored{Pos: r.Pos, Op: r.Op}
		if d.flaw == durableOnWrite {
			d.lake.mu.Lock()
			d.lake.files["log"] = append(d.lake.files["log"], s)
			d.lake.mu.Unlock()
			d.sent++
			continue
		}
		d.buf = append(d.buf, s)
	}
	return nil
}

func (d *memDestination) Buffered() (int64, int64) {
	if d.flaw == durableOnWrite {
		return int64(d.sent), int64(8 * d.sent)
	}
	return int64(len(d.buf)), int64(8 * len(d.buf))
}

func (d *memDestination) Flush(context.Context) error {
	d.sent = 0
	if len(d.buf) == 0 {
		return nil
	}
	d.lake.mu.Lock()
	defer d.lake.mu.Unlock()
	if d.flaw == appendOnFlush {
		d.lake.files["log"] = append(d.lake.files["log"], d.buf...)
	} else {
		d.lake.files[d.buf[0].Pos.String()] = d.buf
	}
	d.buf = nil
	return nil
}

func (d *memDestination) Close(context.Context) error { d.buf = nil; return nil }

func TestCorrectInMemorySourcePasses(t *testing.T) {
	conformance.TestSource(t, memSourceDriver{flaw: correct})
}

func TestCorrectInMemoryDestinationPasses(t *testing.T) {
	conformance.TestDestination(t, memDestinationDriver{flaw: correct})
}

// failing runs every check and returns the names of those that failed, logging
// what each said.
func failing[D any](t *testing.T, d D, checks []conformance.Check[D]) map[string]bool {
	out := map[string]bool{}
	for _, c := range checks {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := c.Run(ctx, t, d)
		cancel()
		if err != nil {
			out[c.Name] = true
			t.Logf("%s failed as it should: %v", c.Name, err)
		}
	}
	return out
}

func TestBrokenSourcesFailTheSuite(t *testing.T) {
	cases := []struct {
		name string
		flaw flaw
		want []string // checks that must fail (others may too)
	}{
		{"positions out of order", outOfOrder, []string{"PositionsStrictlyIncreaseAcrossSnapshotAndStream", "RestartMidSnapshotDeliversExactlyTheRest"}},
		{"repeated positions", repeatedPosition, []string{"PositionsStrictlyIncreaseAcrossSnapshotAndStream", "RestartMidStreamAfterAckDeliversExactlyTheRest"}},
		{"start emitted again", reemitStart, []string{"PositionsStrictlyIncreaseAcrossSnapshotAndStream", "RestartMidSnapshotDeliversExactlyTheRest"}},
		{"ack past the acked position", ackPastPosition, []string{"RestartMidStreamAfterAckDeliversExactlyTheRest"}},
		{"failed emit ends Read with nil", swallowEmitError, []string{"RestartMidSnapshotDeliversExactlyTheRest"}},
		{"goroutine outlives Close", leakGoroutine, []string{"CloseLeavesNoGoroutine"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := failing[conformance.SourceDriver](t, memSourceDriver{flaw: c.flaw}, conformance.SourceChecks())
			for _, name := range c.want {
				if !got[name] {
					t.Errorf("the suite did not report %s as failing %s", c.name, name)
				}
			}
		})
	}
}

func TestBrokenDestinationsFailTheSuite(t *testing.T) {
	cases := []struct {
		name string
		flaw flaw
		want []string
	}{
		{"replay appends a flushed batch again", appendOnFlush, []string{"ReplayAfterFlushLeavesOneCopy"}},
		{"stored before Flush, appended on replay", durableOnWrite, []string{"ReplayAfterCrashWithoutFlushLeavesOneCopy"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := failing[conformance.DestinationDriver](t, memDestinationDriver{flaw: c.flaw}, conformance.DestinationChecks())
			for _, name := range c.want {
				if !got[name] {
					t.Errorf("the suite did not report %s as failing %s", c.name, name)
				}
			}
		})
	}
}
