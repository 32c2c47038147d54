package pipeline

import (
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// States a connector passes through, as given to Observer.SetState.
const (
	StateStarting = "starting" // opening connections, loading the committed offset
	StateRunning  = "running"  // reading and writing
	StateRetrying = "retrying" // failed with a transient error, waiting to restart
	StateWaiting  = "waiting"  // another process holds the connector's lease
	StateFailed   = "failed"   // failed with a permanent error; not restarted
	StateStopped  = "stopped"  // stopped cleanly on cancellation
	StateDone     = "done"     // the source had nothing more to read (sync, initial_only)
)

// Observer receives what the runtime does, for the status API and metrics. The
// embedded connector.Status is what the source itself reports. Implementations are
// safe for concurrent use: Read is called from the source's goroutine.
type Observer interface {
	connector.Status
	// Read counts records received from the source.
	Read(n int)
	// Written counts records handed to the destination and their approximate bytes.
	Written(n int, bytes int64)
	// Flushed reports one flush: rows and bytes made durable and how long it took.
	Flushed(rows, bytes int64, d time.Duration)
	// Committed reports a committed position and the commit time at the source of the
	// last record committed, from which the lag in seconds is derived.
	Committed(pos record.Position, commitTS time.Time)
	// SetState is one of the State* constants; err is the cause for retrying/failed.
	SetState(state string, err error)
}

// NopObserver discards everything.
type NopObserver struct{ connector.NopStatus }

// Read does nothing.
func (NopObserver) Read(int) {}

// Written does nothing.
func (NopObserver) Written(int, int64) {}

// Flushed does nothing.
func (NopObserver) Flushed(int64, int64, time.Duration) {}

// Committed does nothing.
func (NopObserver) Committed(record.Position, time.Time) {}

// SetState does nothing.
func (NopObserver) SetState(string, error) {}
