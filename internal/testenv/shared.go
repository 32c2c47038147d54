package testenv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// NeedServers skips t in -short mode. Every test that starts a server (PostgreSQL,
// MariaDB, the S3 gateway) or builds a binary calls it first, so that
// `go test -short ./...` runs only the unit tests, in seconds, on any machine.
func NeedServers(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts servers or builds binaries: skipped in -short mode")
	}
}

// Shared is something the tests of one package share and start on first use rather
// than in TestMain: a server, a built binary. Tests that do not need it (unit tests,
// fuzz workers) then never wait for it, and a -run selection starts only what it
// uses. TestMain calls Stop after m.Run.
type Shared[T any] struct {
	// Start starts the thing; stop undoes it (nil when there is nothing to undo).
	Start func(ctx context.Context) (v T, stop func() error, err error)
	// Timeout bounds Start; zero means five minutes.
	Timeout time.Duration

	once sync.Once
	v    T
	stop func() error
	err  error
}

// Get skips t in -short mode, starts the thing the first time it is called, and
// fails t when it could not be started (that and every later call: a broken server
// fails each test that needed it, not just the first).
func (s *Shared[T]) Get(t testing.TB) T {
	t.Helper()
	NeedServers(t)
	s.once.Do(func() {
		timeout := s.Timeout
		if timeout == 0 {
			timeout = 5 * time.Minute
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		s.v, s.stop, s.err = s.Start(ctx)
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.v
}

// Stop stops what Get started; it does nothing when nothing was.
func (s *Shared[T]) Stop() error {
	var stop func() error
	// Taking the Once here makes Stop safe after tests that never called Get, and
	// orders it after a Start still running in a leaked goroutine.
	s.once.Do(func() { s.err = errors.New("testenv: Shared used after Stop") })
	stop, s.stop = s.stop, nil
	if stop == nil {
		return nil
	}
	if err := stop(); err != nil {
		return fmt.Errorf("stop shared test server: %w", err)
	}
	return nil
}

// SharedPostgres is a PostgreSQL server started with o on first use.
func SharedPostgres(o PostgresOptions) *Shared[*Postgres] {
	return &Shared[*Postgres]{Start: func(ctx context.Context) (*Postgres, func() error, error) {
		pg, err := StartPostgres(ctx, o)
		if err != nil {
			return nil, nil, fmt.Errorf("start postgres: %w", err)
		}
		return pg, pg.Stop, nil
	}}
}

// SharedMariaDB is a MariaDB server started with o on first use.
func SharedMariaDB(o MariaDBOptions) *Shared[*MariaDB] {
	return &Shared[*MariaDB]{Start: func(ctx context.Context) (*MariaDB, func() error, error) {
		m, err := StartMariaDB(ctx, o)
		if err != nil {
			return nil, nil, fmt.Errorf("start mariadb: %w", err)
		}
		return m, m.Stop, nil
	}}
}

// SharedS3 is an S3 gateway started on first use.
func SharedS3() *Shared[*S3] {
	return &Shared[*S3]{Start: func(ctx context.Context) (*S3, func() error, error) {
		s, err := StartS3(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("start s3: %w", err)
		}
		return s, s.Stop, nil
	}}
}

// SharedConnectd is the connectd binary, built on first use (see BuildConnectd).
func SharedConnectd() *Shared[string] {
	return sharedBinary(BuildConnectd)
}

// SharedConnectdDuckDB is the connectd binary with the duckdb destination, built on
// first use (see BuildConnectdDuckDB).
func SharedConnectdDuckDB() *Shared[string] {
	return sharedBinary(BuildConnectdDuckDB)
}

func sharedBinary(build func(ctx context.Context, root string) (string, func(), error)) *Shared[string] {
	return &Shared[string]{Start: func(ctx context.Context) (string, func() error, error) {
		bin, cleanup, err := build(ctx, "")
		if err != nil {
			return "", nil, err
		}
		return bin, func() error { cleanup(); return nil }, nil
	}}
}
