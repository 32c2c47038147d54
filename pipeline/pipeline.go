// Package pipeline is the runtime: it moves records from one source through a
// bounded buffer into one destination, and owns the delivery order (docs/design.md,
// "Delivery order"): write -> flush (durable) -> commit offset -> ack the source.
// After an `offsets reset` it also puts the reset epoch in front of every position
// (epoch.go), which sources never see. A Supervisor runs many connectors and restarts those that fail with a
// transient error.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Defaults applied to zero fields of Options; Flush takes the defaults of config.Flush.
const (
	DefaultBuffer      = 16
	DefaultBufferBytes = 32 << 20
	DefaultStopTimeout = 60 * time.Second
)

// Store is what the runtime needs of an offsets store (offsets.Store has more).
type Store interface {
	// Load returns the committed position, or nil when the connector has none.
	Load(ctx context.Context, connector string) (record.Position, error)
	// Commit durably replaces the connector's position.
	Commit(ctx context.Context, connector string, pos record.Position) error
}

// Fenced is what a Store held under a lease adds (offsets.Lease is one): Lost is
// closed once another process may own the connector; Err then says why. The
// runtime stops at once when it closes, without flushing or committing, so that it
// writes nothing after the new owner has started.
type Fenced interface {
	Lost() <-chan struct{}
	Err() error
}

// Lease is a connector's Store held by this process alone until Release.
type Lease interface {
	Store
	Fenced
	// Release gives the connector up, so that another process can take it at once.
	Release(ctx context.Context) error
}

// ErrLeaseLost ends a run stopped because its lease was lost.
var ErrLeaseLost = errors.New("stopped at once, without flushing: another process owns the connector now")

// Options is one connector's runtime.
type Options struct {
	Name        string // the connector's name: its identity in the offset store
	Source      connector.Source
	Destination connector.Destination
	Store       Store        // a Fenced one (a lease) stops the run when it is lost
	Flush       config.Flush // zero fields take the Default* values
	// Buffer is how many batches may wait between source and destination, and
	// BufferBytes how many bytes of records (record.Bytes); a full buffer blocks the
	// source's emit, which bounds memory whatever the rows' size (defaults 16 and
	// 32 MiB; a batch larger than BufferBytes waits for an empty buffer).
	Buffer      int
	BufferBytes int64
	// StopTimeout bounds the final flush and commit once ctx has ended, and the wait
	// for a source to return from Read after being told to stop (default 60s).
	StopTimeout time.Duration
	Logger      *slog.Logger // with the connector's name already attached
	Observer    Observer     // nil: NopObserver
}

func (o *Options) setDefaults() {
	// The loader refuses limits <= 0; a negative one built in Go means the default too.
	for _, v := range []*int64{&o.Flush.Rows, (*int64)(&o.Flush.Bytes), (*int64)(&o.Flush.Interval)} {
		*v = max(*v, 0)
	}
	if err := config.ApplyDefaults(&o.Flush); err != nil {
		panic(err) // the default tags of config.Flush are tested
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = DefaultBufferBytes
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
}

// Run moves records from o.Source to o.Destination until ctx ends (then it stops
// reading, writes and commits what was already read, and returns nil) or the source's
// Read returns nil (then it commits everything and returns nil). Any failure returns
// an error saying what failed, after which nothing more is committed; errors keep
// their connector.Permanent mark. Run owns Source and Destination and closes both
// before it returns. It sets the states starting, running, stopped and done; the
// caller sets retrying and failed.
func Run(ctx context.Context, o Options) error {
	o.setDefaults()
	if o.Source == nil || o.Destination == nil || o.Store == nil {
		return connector.Permanent(fmt.Errorf("pipeline %s: source, destination and offset store are required", o.Name))
	}
	r := &runner{o: o, log: o.Logger, obs: o.Observer}
	err := r.run(ctx)
	if err != nil {
		return fmt.Errorf("pipeline %s: %w", o.Name, err)
	}
	return nil
}

// batch is a source's batch on its way to the destination, with its record.Bytes,
// capped at Options.BufferBytes, which it holds of runner.queued until written.
type batch struct {
	recs  []record.Record
	bytes int64
}

// runner is the state of one Run. Only the writer loop (Run's goroutine) touches it,
// except batches and readDone which connect it to the source's goroutine.
type runner struct {
	o   Options
	log *slog.Logger
	obs Observer

	batches    chan batch
	queued     *semaphore.Weighted // the bytes of the batches in batches
	readDone   chan error
	readEnded  bool
	cancelRead context.CancelFunc

	epoch     uint32          // the reset epoch of every position this run writes (epoch.go)
	last      record.Position // last position written, or the start position
	pending   bool            // written since the last commit
	pendingTS time.Time       // commit time of the last record written
	timer     *time.Timer     // flush interval, armed by the first write after a commit
}

func (r *runner) run(ctx context.Context) (err error) {
	// Destination, store and ack calls get a context that survives ctx's end so that a
	// stop can still flush and commit; it ends StopTimeout after ctx does.
	opCtx, cancelOp := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelOp()
	ctx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	if f, ok := r.o.Store.(Fenced); ok {
		// A lost lease ends everything at once, the final flush included: the new
		// owner may already be writing.
		go func() {
			select {
			case <-f.Lost():
				cancelOp()
				cancelRun()
			case <-opCtx.Done():
			}
		}()
		defer func() {
			if lost := r.lost(); lost != nil {
				err = lost
			}
		}()
	}
	go func() {
		select {
		case <-ctx.Done():
			t := time.NewTimer(r.o.StopTimeout)
			defer t.Stop()
			select {
			case <-t.C:
				cancelOp()
			case <-opCtx.Done():
			}
		case <-opCtx.Done():
		}
	}()

	r.obs.SetState(StateStarting, nil)
	readStarted := false
	defer func() {
		if readStarted {
			r.cancelRead()
			r.waitRead()
		}
		r.close(ctx)
	}()

	start, err := r.o.Store.Load(opCtx, r.o.Name)
	if err != nil {
		return fmt.Errorf("load offset: %w", err)
	}
	if t, ok := r.o.Destination.(connector.Transactional); ok {
		if start, err = r.reconcile(opCtx, t, start); err != nil {
			return err
		}
	}
	epoch, srcStart, err := SplitEpoch(start)
	if err != nil {
		return connector.Permanent(fmt.Errorf("load offset: %w: the offsets store holds a damaged position; `connectd offsets reset` starts the connector again in a new epoch", err))
	}
	r.log.Info("pipeline starting", "position", start.String(), "epoch", epoch)
	r.epoch = epoch
	r.last = start
	if rs, ok := r.o.Destination.(connector.Resumer); ok && start != nil && replayVaries(r.o.Source) {
		if err := rs.Resume(opCtx, start); err != nil {
			return fmt.Errorf("resume the destination after %s: %w", start, err)
		}
	}
	r.batches = make(chan batch, r.o.Buffer)
	r.queued = semaphore.NewWeighted(r.o.BufferBytes)
	r.readDone = make(chan error, 1)
	r.timer = time.NewTimer(time.Hour)
	r.timer.Stop()
	defer r.timer.Stop()

	var readCtx context.Context
	readCtx, r.cancelRead = context.WithCancel(ctx)
	readStarted = true
	go r.read(readCtx, srcStart)
	r.obs.SetState(StateRunning, nil)

	state, err := r.loop(ctx, opCtx, readCtx)
	if err != nil {
		return err
	}
	r.log.Info("pipeline "+state, "committed", r.last.String())
	r.obs.SetState(state, nil)
	return nil
}

// lost is the error of a lost lease, or nil while the store's lease holds (or it has
// none).
func (r *runner) lost() error {
	f, ok := r.o.Store.(Fenced)
	if !ok {
		return nil
	}
	select {
	case <-f.Lost():
		return fmt.Errorf("%w; %w", f.Err(), ErrLeaseLost)
	default:
		return nil
	}
}

// read runs the source in its own goroutine; a panic becomes an error so that one
// broken connector cannot take the daemon down.
func (r *runner) read(ctx context.Context, start record.Position) {
	var err error
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("source panicked: %v\n%s", p, debug.Stack())
		}
		r.readDone <- err
	}()
	err = r.o.Source.Read(ctx, start, r.emitter(ctx))
}

// emitter returns the source's EmitFunc: it queues a batch, blocking while the
// buffer is full, and gives up once the pipeline stops reading.
func (r *runner) emitter(readCtx context.Context) connector.EmitFunc {
	return func(ctx context.Context, recs []record.Record) error {
		if len(recs) == 0 {
			return nil
		}
		if err := readCtx.Err(); err != nil {
			return err // stopping: select below would pick at random if the buffer has room
		}
		b := batch{recs: recs}
		for i := range recs {
			b.bytes += int64(recs[i].Bytes())
		}
		b.bytes = min(b.bytes, r.o.BufferBytes)
		actx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(readCtx, cancel)()
		if err := r.queued.Acquire(actx, b.bytes); err != nil {
			if readCtx.Err() != nil {
				return readCtx.Err()
			}
			return err
		}
		select {
		case r.batches <- b:
			r.obs.Read(len(recs))
			return nil
		case <-ctx.Done():
			r.queued.Release(b.bytes)
			return ctx.Err()
		case <-readCtx.Done():
			r.queued.Release(b.bytes)
			return readCtx.Err()
		}
	}
}

// loop is the writer: strictly sequential, so at most one flush is in flight and it
// is committed and acked before any new record is written.
func (r *runner) loop(ctx, opCtx, readCtx context.Context) (string, error) {
	for {
		select {
		case b := <-r.batches:
			if err := r.write(opCtx, b); err != nil {
				return "", err
			}
		case <-r.timer.C:
			if err := r.commit(opCtx); err != nil {
				return "", err
			}
		case err := <-r.readDone:
			r.readEnded = true
			if readCtx.Err() != nil {
				// The source saw ctx end before we did; whatever it returned, this is a stop.
				return r.finish(opCtx, StateStopped, err)
			}
			if err != nil {
				return "", fmt.Errorf("read: %w", err)
			}
			return r.finish(opCtx, StateDone, nil)
		case <-ctx.Done():
			return r.finish(opCtx, StateStopped, nil)
		}
	}
}

// finish stops the source, writes every batch it had already emitted, and commits.
func (r *runner) finish(opCtx context.Context, state string, readErr error) (string, error) {
	r.cancelRead()
	for !r.readEnded {
		select {
		case b := <-r.batches:
			if err := r.write(opCtx, b); err != nil {
				return "", err
			}
		case readErr = <-r.readDone:
			r.readEnded = true
		case <-opCtx.Done():
			return "", fmt.Errorf("stop: source did not return from Read: %w", opCtx.Err())
		}
	}
	if readErr != nil && !errors.Is(readErr, context.Canceled) {
		r.log.Debug("source returned while stopping", "err", readErr)
	}
	// Read has returned, so every emit has completed: what is queued is all there is.
	for drained := false; !drained; {
		select {
		case b := <-r.batches:
			if err := r.write(opCtx, b); err != nil {
				return "", err
			}
		default:
			drained = true
		}
	}
	if err := r.commit(opCtx); err != nil {
		return "", err
	}
	return state, nil
}

// write hands one batch to the destination, then flushes if a limit is reached.
func (r *runner) write(ctx context.Context, q batch) error {
	defer r.queued.Release(q.bytes)
	b := q.recs
	if len(b) == 0 {
		return nil
	}
	if err := stamp(r.epoch, b); err != nil {
		return err
	}
	prev := r.last
	for i := range b {
		if b[i].Pos.Compare(prev) <= 0 {
			return connector.Permanent(fmt.Errorf("source emitted position %s after %s: positions must strictly increase", b[i].Pos, prev))
		}
		prev = b[i].Pos
	}
	data := withoutCheckpoints(b)
	_, before := r.o.Destination.Buffered()
	if len(data) > 0 {
		if err := r.o.Destination.Write(ctx, data); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	rows, bytes := r.o.Destination.Buffered()
	written := bytes - before
	if written < 0 {
		written = bytes
	}
	r.obs.Written(len(data), written)
	r.last = prev
	r.pendingTS = b[len(b)-1].CommitTS
	if !r.pending {
		r.pending = true
		r.timer.Reset(r.o.Flush.Interval)
	}
	if rows >= r.o.Flush.Rows || bytes >= int64(r.o.Flush.Bytes) {
		return r.commit(ctx)
	}
	return nil
}

// replayVaries reports whether the source may replay other records than it emitted
// before a crash.
func replayVaries(s connector.Source) bool {
	v, ok := s.(connector.ReplayVaries)
	return ok && v.ReplayVaries()
}

// withoutCheckpoints returns b without its OpCheckpoint records, reusing b's array
// only when there is something to drop (the common batch has none and is not copied).
func withoutCheckpoints(b []record.Record) []record.Record {
	n := 0
	for i := range b {
		if b[i].Op == record.OpCheckpoint {
			n++
		}
	}
	if n == 0 {
		return b
	}
	out := make([]record.Record, 0, len(b)-n)
	for i := range b {
		if b[i].Op != record.OpCheckpoint {
			out = append(out, b[i])
		}
	}
	return out
}

// commit makes everything written durable, then records the offset, then tells the
// source. Each step runs only if the one before succeeded (docs/design.md, "Delivery order").
func (r *runner) commit(ctx context.Context) error {
	if !r.pending {
		return nil
	}
	r.timer.Stop()
	rows, bytes := r.o.Destination.Buffered()
	t0 := time.Now()
	pos := r.last
	if err := r.flush(ctx, pos); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	r.obs.Flushed(rows, bytes, time.Since(t0))
	if err := r.o.Store.Commit(ctx, r.o.Name, pos); err != nil {
		return fmt.Errorf("commit %s: %w", pos, err)
	}
	r.pending = false
	r.obs.Committed(pos, r.pendingTS)
	if err := r.o.Source.Ack(ctx, sourcePos(r.epoch, pos)); err != nil {
		return fmt.Errorf("ack %s: %w", pos, err)
	}
	r.log.Debug("committed", "position", pos.String(), "rows", rows, "bytes", bytes)
	return nil
}

// flush makes what was written durable; a transactional destination commits pos with it.
func (r *runner) flush(ctx context.Context, pos record.Position) error {
	if t, ok := r.o.Destination.(connector.Transactional); ok {
		return t.FlushAt(ctx, pos)
	}
	return r.o.Destination.Flush(ctx)
}

// waitRead waits for the source's Read to return, but not forever: a source that
// ignores cancellation must not keep the pipeline from closing it.
func (r *runner) waitRead() {
	if r.readEnded {
		return
	}
	t := time.NewTimer(r.o.StopTimeout)
	defer t.Stop()
	for {
		select {
		case b := <-r.batches: // unblocks nothing (emit watches readCtx) but frees memory
			r.queued.Release(b.bytes)
		case err := <-r.readDone:
			// Read's error no longer matters: the pipeline is stopping.
			_ = err
			r.readEnded = true
			return
		case <-t.C:
			r.log.Error("source did not return from Read after being stopped; closing it anyway", "timeout", r.o.StopTimeout)
			return
		}
	}
}

// close releases source and destination without flushing.
func (r *runner) close(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.StopTimeout)
	defer cancel()
	if err := r.o.Destination.Close(cctx); err != nil {
		r.log.Warn("close destination", "err", err)
	}
	if err := r.o.Source.Close(cctx); err != nil {
		r.log.Warn("close source", "err", err)
	}
}
