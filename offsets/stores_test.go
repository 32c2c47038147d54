package offsets_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/offsets/offsetstest"
	"github.com/connectd/connectd/record"
)

// TestStores runs the offsets store contract (offsetstest) against each kind of
// store, on real servers: a PostgreSQL and an S3-compatible server (versitygw)
// started for the test.
func TestStores(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("file", func(t *testing.T) {
		url := "file://" + t.TempDir()
		offsetstest.TestStore(t, opener(ctx, url))
		t.Run("lease", func(t *testing.T) {
			offsetstest.TestLease(t, opener(ctx, url), offsetstest.LeaseOptions{Holder: holderProcess(url)})
		})
	})

	t.Run("s3", func(t *testing.T) {
		testenv.NeedServers(t)
		srv, err := testenv.StartS3(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Stop() })
		if err := srv.CreateBucket(ctx, "state"); err != nil {
			t.Fatal(err)
		}
		// Credentials come from the standard chain, as they would in production.
		t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
		t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
		// A short lease, so that a takeover after an expiry takes seconds.
		base := "s3://state/connectd/offsets?lease=3s&path_style=true&region=" + srv.Region + "&endpoint=" + url.QueryEscape(srv.Endpoint)
		offsetstest.TestStore(t, opener(ctx, base))
		t.Run("lease", func(t *testing.T) {
			offsetstest.TestLease(t, opener(ctx, base), offsetstest.LeaseOptions{
				// The owner stops renewing, as a process frozen or cut off would.
				Steal:  func(_ testing.TB, a offsets.Lease) { offsets.StopRenewing(a) },
				Holder: holderProcess(base),
			})
		})

		_, err = offsets.Open(ctx, "s3://missing/offsets?path_style=true&endpoint="+url.QueryEscape(srv.Endpoint))
		if err == nil || !strings.Contains(err.Error(), "bucket missing cannot be reached") {
			t.Errorf("a missing bucket: err = %v, want it named", err)
		}
		// Two prefixes of one bucket are two stores.
		a, err := offsets.Open(ctx, strings.Replace(base, "/offsets?", "/a?", 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Commit(ctx, "orders", record.Position{7}); err != nil {
			t.Fatal(err)
		}
		b, err := offsets.Open(ctx, strings.Replace(base, "/offsets?", "/a2?", 1))
		if err != nil {
			t.Fatal(err)
		}
		if names, err := b.List(ctx); err != nil || len(names) != 0 {
			t.Errorf("prefix a2 lists %v, %v: it sees prefix a's objects", names, err)
		}
	})

	t.Run("postgres", func(t *testing.T) {
		testenv.NeedServers(t)
		srv, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{WalLevel: "replica"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Stop() })
		dsn, err := srv.CreateDatabase(ctx, "offsets")
		if err != nil {
			t.Fatal(err)
		}
		offsetstest.TestStore(t, opener(ctx, dsn))
		t.Run("lease", func(t *testing.T) {
			offsetstest.TestLease(t, opener(ctx, dsn), offsetstest.LeaseOptions{
				Steal: func(tb testing.TB, _ offsets.Lease) {
					// An operator (or a network failure) ends the owner's session.
					c, err := pgx.Connect(ctx, dsn)
					if err != nil {
						tb.Fatal(err)
					}
					defer c.Close(ctx)
					if _, err := c.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'connectd lease takeover'`); err != nil {
						tb.Fatal(err)
					}
				},
				Holder: holderProcess(dsn),
			})
		})

		// The store outlives a restart of its server: the next call reconnects.
		s, err := offsets.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Commit(ctx, "restart", record.Position{1}); err != nil {
			t.Fatal(err)
		}
		if err := srv.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		var lastErr error
		for i := 0; i < 3; i++ { // the first call may find the old connection broken
			if lastErr = s.Commit(ctx, "restart", record.Position{2}); lastErr == nil {
				break
			}
		}
		if lastErr != nil {
			t.Fatalf("commit after a server restart: %v", lastErr)
		}
		if pos, err := s.Load(ctx, "restart"); err != nil || !reflect.DeepEqual(pos, record.Position{2}) {
			t.Fatalf("load after a server restart = %x, %v", pos, err)
		}
	})
}

// opener opens the store at url, a new instance on each call.
func opener(ctx context.Context, url string) offsetstest.Opener {
	return func(tb testing.TB) offsets.Store {
		s, err := offsets.Open(ctx, url)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = s.Close() })
		return s
	}
}

// holderProcess runs this test binary as a process that holds a lease in the store
// at url (TestLeaseHelperProcess).
func holderProcess(url string) func(tb testing.TB, connector string) *exec.Cmd {
	return func(_ testing.TB, connector string) *exec.Cmd {
		child := exec.Command(os.Args[0], "-test.run=^TestLeaseHelperProcess$")
		child.Env = append(os.Environ(), "LEASE_HELPER_URL="+url, "LEASE_HELPER_CONNECTOR="+connector)
		child.Stderr = os.Stderr
		return child
	}
}

// TestLeaseHelperProcess is the process holderProcess starts: it takes the lease and
// holds it until it is killed.
func TestLeaseHelperProcess(t *testing.T) {
	url := os.Getenv("LEASE_HELPER_URL")
	if url == "" {
		t.Skip("a helper process of the lease contract")
	}
	ctx := context.Background()
	s, err := offsets.Open(ctx, url)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	if err := offsetstest.HoldLease(ctx, s, os.Getenv("LEASE_HELPER_CONNECTOR"), os.Stdout); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	os.Exit(0)
}
