package offsets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/record"
)

// A postgres:// lease is a session advisory lock, keyed by the connector's name, on
// a connection of its own that the lease keeps open: the server drops the lock when
// that session ends (the process died, or its connection broke), so there is no
// expiry to wait for. The connectd_leases row names the holder and counts the
// generations; every commit runs on the lease's connection, in a transaction that
// checks the row still has this owner's generation. The check matters where the
// lock does not hold: behind a pooler that hands sessions around, say.

// pgLeaseWatch is how often a lease checks that its session and generation still
// stand; a broken connection means the server released the lock.
const pgLeaseWatch = 2 * time.Second

// pgLockKey is the advisory lock's key for a connector (64 bits of a hash: two
// connectors sharing one would only wait on each other, not interleave).
const pgLockKey = `hashtextextended('connectd lease ' || $1, 0)`

// Acquire takes the connector's advisory lock on a new connection and bumps its
// generation, or returns a *HeldError naming the holder.
func (p *Postgres) Acquire(ctx context.Context, connector string, holder Holder) (Lease, error) {
	if err := checkName(connector); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cfg := p.cfg.Copy()
	cfg.RuntimeParams["application_name"] = "connectd lease " + connector
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("offsets: lease %s: connect to %s: %w", connector, p.where(), err)
	}
	l := &pgLease{p: p, connector: connector, conn: conn, lostSignal: newLostSignal(), stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.take(cctx, holder); err != nil {
		_ = conn.Close(context.Background())
		return nil, err
	}
	go l.watch()
	return l, nil
}

func (l *pgLease) take(ctx context.Context, holder Holder) error {
	var got bool
	if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+pgLockKey+`)`, l.connector).Scan(&got); err != nil {
		return fmt.Errorf("offsets: lease %s: lock in %s: %w", l.connector, l.p.where(), err)
	}
	if !got {
		h := Holder{}
		var raw []byte
		err := l.conn.QueryRow(ctx, `SELECT holder FROM `+pgLeasesTable+` WHERE connector = $1`, l.connector).Scan(&raw)
		if err == nil {
			_ = json.Unmarshal(raw, &h)
		}
		return &HeldError{Connector: l.connector, Holder: h}
	}
	raw, err := json.Marshal(holder)
	if err != nil {
		return fmt.Errorf("offsets: lease %s: %w", l.connector, err)
	}
	err = l.conn.QueryRow(ctx, `INSERT INTO `+pgLeasesTable+` (connector, generation, holder, taken_at) VALUES ($1, 1, $2, now())
ON CONFLICT (connector) DO UPDATE SET generation = `+pgLeasesTable+`.generation + 1, holder = excluded.holder, taken_at = excluded.taken_at
RETURNING generation`, l.connector, raw).Scan(&l.gen)
	if err != nil {
		return fmt.Errorf("offsets: lease %s: record the holder in %s: %w", l.connector, l.p.where(), err)
	}
	return nil
}

type pgLease struct {
	p         *Postgres
	connector string
	gen       int64
	*lostSignal

	mu   sync.Mutex
	conn *pgx.Conn // nil once released or broken

	stop, done chan struct{}
}

func (l *pgLease) Generation() int64 { return l.gen }

// do runs f on the lease's connection; a connection that broke (or a query cut
// short, which leaves it in an unknown state) ends the lease: the lock went with it.
func (l *pgLease) do(ctx context.Context, what string, f func(context.Context, *pgx.Conn) error) error {
	if err := l.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return &LostError{Connector: l.connector, Cause: errors.New("the lease's connection is closed")}
	}
	err := f(ctx, l.conn)
	if err == nil || IsLost(err) {
		return err
	}
	if l.conn.IsClosed() || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		_ = l.conn.Close(context.Background())
		l.conn = nil
		lost := &LostError{Connector: l.connector, Cause: fmt.Errorf("the connection holding its lock in %s broke: %w", l.p.where(), err)}
		l.lose(lost)
		return lost
	}
	return fmt.Errorf("offsets: %s in %s: %w", what, l.p.where(), err)
}

// check fails with a *LostError when the lease row no longer has this generation.
func (l *pgLease) check(ctx context.Context, c pgx.Tx) error {
	var gen int64
	var raw []byte
	err := c.QueryRow(ctx, `SELECT generation, holder FROM `+pgLeasesTable+` WHERE connector = $1 FOR SHARE`, l.connector).Scan(&gen, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return &LostError{Connector: l.connector, Cause: fmt.Errorf("its row in %s was removed", pgLeasesTable)}
	}
	if err != nil {
		return err
	}
	if gen != l.gen {
		var h Holder
		_ = json.Unmarshal(raw, &h)
		return &LostError{Connector: l.connector, Holder: h, Cause: fmt.Errorf("generation %d replaced ours (%d)", gen, l.gen)}
	}
	return nil
}

// watch checks the session and the generation until Release.
func (l *pgLease) watch() {
	defer close(l.done)
	t := time.NewTicker(pgLeaseWatch)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), pgLeaseWatch*2)
		err := l.do(ctx, "check the lease of "+l.connector, func(ctx context.Context, c *pgx.Conn) error {
			return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return l.check(ctx, tx) })
		})
		cancel()
		if IsLost(err) {
			l.lose(err)
			return
		}
	}
}

func (l *pgLease) Load(ctx context.Context, connector string) (record.Position, error) {
	if err := checkConnector(l.connector, connector); err != nil {
		return nil, err
	}
	var pos record.Position
	err := l.do(ctx, "load "+connector, func(ctx context.Context, c *pgx.Conn) (err error) {
		pos, err = loadPG(ctx, c, connector)
		return err
	})
	return pos, err
}

// Commit checks the generation, then that the position moves forward, then writes
// it, in one transaction on the lease's connection.
func (l *pgLease) Commit(ctx context.Context, connector string, pos record.Position) error {
	if err := checkConnector(l.connector, connector); err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("offsets: commit %s: empty position", connector)
	}
	err := l.do(ctx, "commit "+connector, func(ctx context.Context, c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if err := l.check(ctx, tx); err != nil {
				return err
			}
			var committed []byte
			err := tx.QueryRow(ctx, `SELECT position FROM `+pgOffsetsTable+` WHERE connector = $1 FOR UPDATE`, connector).Scan(&committed)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if err := checkForward(connector, committed, pos); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+pgOffsetsTable+` (connector, position, committed_at, generation) VALUES ($1, $2, now(), $3)
ON CONFLICT (connector) DO UPDATE SET position = excluded.position, committed_at = excluded.committed_at, generation = excluded.generation`, connector, []byte(pos), l.gen)
			return err
		})
	})
	if IsLost(err) {
		l.lose(err)
	}
	return err
}

// Release closes the lease's connection, which releases the lock.
func (l *pgLease) Release(context.Context) error {
	l.mu.Lock()
	select {
	case <-l.stop:
		l.mu.Unlock()
		return nil
	default:
	}
	close(l.stop)
	l.mu.Unlock()
	<-l.done
	l.lose(&LostError{Connector: l.connector, Cause: errors.New("the lease was released")})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	err := l.conn.Close(context.Background())
	l.conn = nil
	if err != nil {
		return fmt.Errorf("offsets: release %s: %w", l.connector, err)
	}
	return nil
}
