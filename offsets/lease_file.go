package offsets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/connectd/connectd/record"
)

// A file:// lease is an exclusive flock(2) on <connector>.lock in the offsets
// directory, held for the life of the lease's open descriptor: the kernel drops it
// when the process dies, however it dies, so there is no expiry to wait for. Beside
// it <connector>.lease names the holder and counts the generations. flock is only
// as good as the file system's: the processes must share a local directory (not a
// network file system that ignores flock).
const (
	lockExt  = ".lock"
	leaseExt = ".lease"
)

// leaseRecord is what a lease file (file://) or object (s3://) holds.
type leaseRecord struct {
	Connector  string `json:"connector"`
	Generation int64  `json:"generation"`
	Holder     Holder `json:"holder"`
	// Expires and Released are the s3:// store's: a lease not renewed by Expires
	// (plus a margin for clocks) may be taken over; a released one at once.
	Expires  string `json:"expires,omitempty"` // RFC 3339, UTC
	Released bool   `json:"released,omitempty"`
}

func (f *File) lockPath(connector string) string {
	return filepath.Join(f.dir, escapeName(connector)+lockExt)
}

func (f *File) leasePath(connector string) string {
	return filepath.Join(f.dir, escapeName(connector)+leaseExt)
}

// readLease returns the connector's lease file, or a zero record when it has none
// or it cannot be read (it only informs).
func (f *File) readLease(connector string) leaseRecord {
	var r leaseRecord
	data, err := os.ReadFile(f.leasePath(connector))
	if err == nil {
		_ = json.Unmarshal(data, &r)
	}
	return r
}

// currentHolder reads the holder from the lease file. The new owner writes it just
// after it got the lock, so a holder that is a dead process of this machine is the
// previous owner's record: read again for a moment.
func (f *File) currentHolder(ctx context.Context, connector string) Holder {
	h := f.readLease(connector).Holder
	for i := 0; i < 50 && deadHere(h) && ctx.Err() == nil; i++ {
		time.Sleep(20 * time.Millisecond)
		h = f.readLease(connector).Holder
	}
	return h
}

// Acquire takes the connector's lock file, or returns a *HeldError naming its holder.
func (f *File) Acquire(ctx context.Context, connector string, holder Holder) (Lease, error) {
	if err := checkName(connector); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(f.lockPath(connector), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("offsets: lease %s: %w", connector, err)
	}
	// An flock belongs to the open file description, so two Acquires in one process
	// exclude each other too.
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lf.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &HeldError{Connector: connector, Holder: f.currentHolder(ctx, connector)}
		}
		return nil, fmt.Errorf("offsets: lease %s: flock %s: %w", connector, f.lockPath(connector), err)
	}
	l := &fileLease{f: f, connector: connector, lock: lf, lostSignal: newLostSignal()}
	if err := l.start(holder); err != nil {
		lf.Close()
		return nil, err
	}
	return l, nil
}

type fileLease struct {
	f         *File
	connector string
	gen       int64
	*lostSignal

	mu   sync.Mutex
	lock *os.File // nil once released
}

// start records the new generation and holder in the lease file.
func (l *fileLease) start(holder Holder) error {
	prev := l.f.readLease(l.connector)
	ml := l.f.lock(l.connector)
	ml.Lock()
	defer ml.Unlock()
	_, offGen, err := l.f.read(l.connector)
	if err != nil {
		return err
	}
	l.gen = max(prev.Generation, offGen) + 1
	data, err := json.MarshalIndent(leaseRecord{Connector: l.connector, Generation: l.gen, Holder: holder}, "", "  ")
	if err != nil {
		return fmt.Errorf("offsets: lease %s: %w", l.connector, err)
	}
	if err := l.f.writeAtomic(l.f.leasePath(l.connector), append(data, '\n')); err != nil {
		return fmt.Errorf("offsets: lease %s: %w", l.connector, err)
	}
	return nil
}

func (l *fileLease) Generation() int64 { return l.gen }

func (l *fileLease) held() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lock == nil {
		return &LostError{Connector: l.connector, Cause: errors.New("the lease was released")}
	}
	return nil
}

func (l *fileLease) Load(ctx context.Context, connector string) (record.Position, error) {
	if err := checkConnector(l.connector, connector); err != nil {
		return nil, err
	}
	return l.f.Load(ctx, connector)
}

// Commit writes the position with the lease's generation. The flock is exclusive
// for as long as it is held, so holding it is the fence.
func (l *fileLease) Commit(ctx context.Context, connector string, pos record.Position) error {
	if err := checkConnector(l.connector, connector); err != nil {
		return err
	}
	if err := l.held(); err != nil {
		return err
	}
	data, err := encodeOffsetGen(connector, pos, l.gen)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ml := l.f.lock(connector)
	ml.Lock()
	defer ml.Unlock()
	committed, _, err := l.f.read(connector)
	if err != nil {
		return err
	}
	if err := checkForward(connector, committed, pos); err != nil {
		return err
	}
	if err := l.f.writeAtomic(l.f.Path(connector), data); err != nil {
		return fmt.Errorf("offsets: commit %s: %w", connector, err)
	}
	return nil
}

// Release closes the lock file, which drops the flock.
func (l *fileLease) Release(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lock == nil {
		return nil
	}
	err := l.lock.Close()
	l.lock = nil
	l.lose(&LostError{Connector: l.connector, Cause: errors.New("the lease was released")})
	if err != nil {
		return fmt.Errorf("offsets: release %s: %w", l.connector, err)
	}
	return nil
}
