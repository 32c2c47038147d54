package offsets

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/record"
)

// TestStores runs the same contract against each kind of store, on real servers: a
// PostgreSQL and an S3-compatible server (versitygw) started for the test.
func TestStores(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		storeContract(t, func(t *testing.T) Store {
			s, err := Open(ctx, "file://"+dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
		t.Run("lease", func(t *testing.T) { leaseContract(t, "file://"+dir, nil) })
	})

	t.Run("s3", func(t *testing.T) {
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
		storeContract(t, func(t *testing.T) Store {
			s, err := Open(ctx, base)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
		t.Run("lease", func(t *testing.T) {
			leaseContract(t, base, func(t *testing.T, a Lease) {
				// The owner stops renewing, as a process frozen or cut off would.
				a.(*s3Lease).stopRenewing()
			})
		})

		_, err = Open(ctx, "s3://missing/offsets?path_style=true&endpoint="+url.QueryEscape(srv.Endpoint))
		if err == nil || !strings.Contains(err.Error(), "bucket missing cannot be reached") {
			t.Errorf("a missing bucket: err = %v, want it named", err)
		}
		// Two prefixes of one bucket are two stores.
		a, err := Open(ctx, strings.Replace(base, "/offsets?", "/a?", 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Commit(ctx, "orders", record.Position{7}); err != nil {
			t.Fatal(err)
		}
		b, err := Open(ctx, strings.Replace(base, "/offsets?", "/a2?", 1))
		if err != nil {
			t.Fatal(err)
		}
		if names, err := b.List(ctx); err != nil || len(names) != 0 {
			t.Errorf("prefix a2 lists %v, %v: it sees prefix a's objects", names, err)
		}
	})

	t.Run("postgres", func(t *testing.T) {
		srv, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{WalLevel: "replica"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Stop() })
		dsn, err := srv.CreateDatabase(ctx, "offsets")
		if err != nil {
			t.Fatal(err)
		}
		storeContract(t, func(t *testing.T) Store {
			s, err := Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
		t.Run("lease", func(t *testing.T) {
			leaseContract(t, dsn, func(t *testing.T, a Lease) {
				// An operator (or a network failure) ends the owner's session.
				admin, err := NewPostgres(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer admin.Close()
				err = admin.do(ctx, "terminate", func(ctx context.Context, c *pgx.Conn) error {
					_, err := c.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'connectd lease takeover'`)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		})

		// The store outlives a restart of its server: the next call reconnects.
		s, err := Open(ctx, dsn)
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

// storeContract checks what every Store promises. open returns a new store on the
// same place each time (a restart of connectd).
func storeContract(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	s := open(t)
	t.Cleanup(func() { _ = s.Close() })

	t.Run("positions", func(t *testing.T) {
		if pos, err := s.Load(ctx, "orders"); err != nil || pos != nil {
			t.Fatalf("Load of an unknown connector = %x, %v; want nil, nil", pos, err)
		}
		for _, p := range []record.Position{{1, 2, 3}, {1, 2, 4}, {0xff}} {
			if err := s.Commit(ctx, "orders", p); err != nil {
				t.Fatal(err)
			}
		}
		again := open(t)
		defer again.Close()
		if pos, err := again.Load(ctx, "orders"); err != nil || !reflect.DeepEqual(pos, record.Position{0xff}) {
			t.Fatalf("Load after reopening = %x, %v; want ff", pos, err)
		}
		if err := s.Commit(ctx, "orders", nil); err == nil || !strings.Contains(err.Error(), "empty position") {
			t.Errorf("Commit of an empty position: err = %v", err)
		}
		if err := s.Commit(ctx, "", record.Position{1}); err == nil || !strings.Contains(err.Error(), "empty connector name") {
			t.Errorf("Commit without a name: err = %v", err)
		}
	})

	t.Run("state", func(t *testing.T) {
		if data, err := s.State("st").Load(ctx, "schema"); err != nil || data != nil {
			t.Fatalf("empty state = %q, %v; want nil", data, err)
		}
		saves := []struct{ conn, key, data string }{{"st", "schema", "one"}, {"st.b", "schema", "two"}, {"st", "b.schema", "three"}, {"st", "empty", ""}}
		for _, c := range saves {
			if err := s.State(c.conn).Save(ctx, c.key, []byte(c.data)); err != nil {
				t.Fatal(err)
			}
		}
		again := open(t)
		defer again.Close()
		for _, c := range saves {
			got, err := again.State(c.conn).Load(ctx, c.key)
			if err != nil || got == nil || string(got) != c.data {
				t.Errorf("state %s/%s = %q (nil: %v), %v; want %q", c.conn, c.key, got, got == nil, err, c.data)
			}
		}
		if err := s.State("st").Save(ctx, "", []byte("x")); err == nil {
			t.Error("Save under an empty key succeeded")
		}
		if names, err := s.List(ctx); err != nil || contains(names, "st") || contains(names, "st.b") {
			t.Errorf("List = %v, %v: it counts state as offsets", names, err)
		}
	})

	t.Run("list and reset", func(t *testing.T) {
		names := []string{"Zeta", "a.b", "a/b", "ünï code", "zeta"}
		for _, n := range names {
			if err := s.Commit(ctx, n, record.Position{1}); err != nil {
				t.Fatal(err)
			}
			if err := s.State(n).Save(ctx, "snapshot", []byte("progress")); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !contains(got, n) {
				t.Errorf("List = %q, missing %q", got, n)
			}
		}
		for i := 1; i < len(got); i++ {
			if got[i-1] >= got[i] {
				t.Errorf("List is not sorted: %q", got)
			}
		}
		if err := s.Reset(ctx, "a.b", nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Reset(ctx, "never-committed", nil); err != nil {
			t.Errorf("Reset of a connector without a position: %v", err)
		}
		if pos, err := s.Load(ctx, "a.b"); err != nil || pos != nil {
			t.Errorf("position after reset = %x, %v", pos, err)
		}
		if data, err := s.State("a.b").Load(ctx, "snapshot"); err != nil || data != nil {
			t.Errorf("state after reset = %q, %v; want none", data, err)
		}
		for _, other := range []string{"a/b", "Zeta"} {
			if pos, err := s.Load(ctx, other); err != nil || pos == nil {
				t.Errorf("%s's position after resetting a.b = %x, %v; want it kept", other, pos, err)
			}
			if data, err := s.State(other).Load(ctx, "snapshot"); err != nil || string(data) != "progress" {
				t.Errorf("%s's state after resetting a.b = %q, %v; want it kept", other, data, err)
			}
		}
	})

	t.Run("reset to a position", func(t *testing.T) {
		for _, n := range []string{"ep", "ep.b"} {
			if err := s.Commit(ctx, n, record.Position{2, 7}); err != nil {
				t.Fatal(err)
			}
			if err := s.State(n).Save(ctx, "snapshot", []byte("progress")); err != nil {
				t.Fatal(err)
			}
		}
		marker := record.Position{0xff, 0, 0, 0, 1}
		if err := s.Reset(ctx, "ep", marker); err != nil {
			t.Fatal(err)
		}
		again := open(t)
		defer again.Close()
		if pos, err := again.Load(ctx, "ep"); err != nil || !reflect.DeepEqual(pos, marker) {
			t.Errorf("position after reset to %x = %x, %v", marker, pos, err)
		}
		if data, err := again.State("ep").Load(ctx, "snapshot"); err != nil || data != nil {
			t.Errorf("state after reset = %q, %v; want none", data, err)
		}
		if names, err := again.List(ctx); err != nil || !contains(names, "ep") {
			t.Errorf("List = %q, %v; want the reset connector listed", names, err)
		}
		if pos, err := again.Load(ctx, "ep.b"); err != nil || !reflect.DeepEqual(pos, record.Position{2, 7}) {
			t.Errorf("another connector's position = %x, %v; want it kept", pos, err)
		}
		if data, err := again.State("ep.b").Load(ctx, "snapshot"); err != nil || string(data) != "progress" {
			t.Errorf("another connector's state = %q, %v; want it kept", data, err)
		}
		if err := s.Reset(ctx, "ep", record.Position{}); err == nil {
			t.Error("Reset to an empty position succeeded")
		}
	})

	t.Run("concurrent commits", func(t *testing.T) {
		var wg sync.WaitGroup
		var failed atomic.Int32
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("worker-%d", w)
				for i := 1; i <= 20; i++ {
					if err := s.Commit(ctx, name, record.Position{byte(w), byte(i)}); err != nil {
						t.Errorf("%s: %v", name, err)
						failed.Add(1)
						return
					}
				}
			}()
		}
		wg.Wait()
		if failed.Load() > 0 {
			return
		}
		for w := 0; w < 4; w++ {
			pos, err := s.Load(ctx, fmt.Sprintf("worker-%d", w))
			if err != nil || !reflect.DeepEqual(pos, record.Position{byte(w), 20}) {
				t.Errorf("worker-%d = %x, %v; want its last commit", w, pos, err)
			}
		}
	})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
