package offsets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/connectd/connectd/record"
)

// A connector has one owner at a time: the process holding its lease in the offsets
// store. Every commit goes through the lease and is fenced by it, so a process that
// lost its lease (another took it over) cannot move the offset any more. What each
// store does is in docs/operations.md ("Running two instances safely").

// Holder says which process holds a connector's lease.
type Holder struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Since   time.Time `json:"since"`
	Version string    `json:"version,omitempty"` // connectd's version
	Config  string    `json:"config,omitempty"`  // the config file, or the command
	// Local names the kernel boot and pid namespace the PID belongs to: a process
	// with the same Local can tell whether the holder is still alive.
	Local string `json:"local,omitempty"`
}

// ThisProcess is the Holder describing the calling process, from now on.
func ThisProcess(version, config string) Holder {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return Holder{Host: host, PID: os.Getpid(), Since: time.Now().UTC().Truncate(time.Second), Version: version, Config: config, Local: localSpace()}
}

// localSpace is this kernel's boot id and this process's pid namespace, or "" when
// they cannot be read (then no holder is ever presumed dead).
func localSpace() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
}

// deadHere reports whether h is a process of this kernel and pid namespace that no
// longer exists: its lease can be taken without waiting for the expiry.
func deadHere(h Holder) bool {
	if h.Local == "" || h.PID <= 0 || h.PID == os.Getpid() || h.Local != localSpace() {
		return false
	}
	err := unix.Kill(h.PID, 0)
	return errors.Is(err, unix.ESRCH)
}

func (h Holder) String() string {
	if h.Host == "" && h.PID == 0 {
		return "an unknown process"
	}
	s := fmt.Sprintf("host %s pid %d since %s", h.Host, h.PID, h.Since.UTC().Format(time.RFC3339))
	if h.Config != "" {
		s += " (" + h.Config + ")"
	}
	return s
}

// Lease is a connector held exclusively by this process. Load and Commit (the
// pipeline's Store) work on the lease's connector only; Commit is fenced: once
// another process has taken the lease over, it fails with a *LostError and the
// offset stays what the new owner made it.
type Lease interface {
	// Load returns the committed position, or nil when the connector has none.
	Load(ctx context.Context, connector string) (record.Position, error)
	// Commit durably replaces the position, unless the lease was lost (a *LostError)
	// or pos is below the committed position (positions never move backwards).
	Commit(ctx context.Context, connector string, pos record.Position) error
	// Generation counts the takes of this connector's lease; each owner has its own.
	Generation() int64
	// Lost is closed once the lease is lost or was not renewed in time, before its
	// expiry: the owner must stop writing at once. Err then says why.
	Lost() <-chan struct{}
	// Err is nil while the lease is held, then a *LostError.
	Err() error
	// Release gives the lease up so that another process can take it at once.
	Release(ctx context.Context) error
}

// HeldError is an Acquire that found the connector held by another process.
type HeldError struct {
	Connector string
	Holder    Holder
	Expires   time.Time // s3:// only: when the lease expires unless renewed
}

func (e *HeldError) Error() string {
	s := fmt.Sprintf("connector %s is held by %s", e.Connector, e.Holder)
	if !e.Expires.IsZero() {
		s += fmt.Sprintf(", lease renewed until %s", e.Expires.UTC().Format(time.RFC3339))
	}
	return s
}

// LostError is a commit (or a renewal) refused because the lease is no longer this
// process's.
type LostError struct {
	Connector string
	Holder    Holder // the new owner, when known
	Cause     error  // why, when no new owner is known
}

func (e *LostError) Error() string {
	if e.Holder.Host != "" || e.Holder.PID != 0 {
		return fmt.Sprintf("lost the lease on connector %s to %s", e.Connector, e.Holder)
	}
	return fmt.Sprintf("lost the lease on connector %s: %v", e.Connector, e.Cause)
}

func (e *LostError) Unwrap() error { return e.Cause }

// IsHeld reports whether err is (or wraps) a *HeldError.
func IsHeld(err error) bool {
	var h *HeldError
	return errors.As(err, &h)
}

// IsLost reports whether err is (or wraps) a *LostError.
func IsLost(err error) bool {
	var l *LostError
	return errors.As(err, &l)
}

// checkForward refuses a commit below the committed position: a replay that moved
// the offset back would deliver again what the lake already has, or a stale process
// would undo its successor's progress. Byte order is position order (an epoch
// prefix after a reset sorts above every earlier position).
func checkForward(connector string, committed, pos record.Position) error {
	if committed != nil && pos.Compare(committed) < 0 {
		return fmt.Errorf("offsets: commit %s: position %s is below the committed position %s: an offset never moves backwards (is another process running this connector, or were the offsets restored from a backup? reset the connector to start again)", connector, pos, committed)
	}
	return nil
}

// lostSignal is the Lost/Err half of a lease, shared by the three stores.
type lostSignal struct {
	once sync.Once
	ch   chan struct{}
	mu   sync.Mutex
	err  error
}

func newLostSignal() *lostSignal { return &lostSignal{ch: make(chan struct{})} }

func (l *lostSignal) Lost() <-chan struct{} { return l.ch }

func (l *lostSignal) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// lose records the first reason and closes the channel; later calls keep it.
func (l *lostSignal) lose(err error) {
	l.once.Do(func() {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(l.ch)
	})
}

// checkConnector keeps a lease to its own connector.
func checkConnector(held, asked string) error {
	if held != asked {
		return fmt.Errorf("offsets: the lease is on connector %s, not %s", held, asked)
	}
	return nil
}
