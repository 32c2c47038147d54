package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// leaseWorld is one connector on a table that a writer changes, for the tests of
// two processes on one config.
type leaseWorld struct {
	p       *pipe
	conn    *pgx.Conn
	w       *writer
	db      *sql.DB
	initial int
	stop    func() // stops the writer and waits for it
}

func newLeaseWorld(t *testing.T, name string, s3Lake bool, offsetsURL func(*pipe) string) *leaseWorld {
	t.Helper()
	dsn, conn := newDatabase(t, "e2e_"+name)
	const initial = 20
	mustExec(t, conn, fmt.Sprintf(`CREATE TABLE public.accounts (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO public.accounts SELECT g, 0, 'initial' FROM generate_series(1, %d) g`, initial))
	p := newPipe(t, name, dsn, s3Lake, "public.accounts")
	if offsetsURL != nil {
		p.offsets = offsetsURL(p)
	}
	p.flush = "{rows: 40, bytes: 1MiB, interval: 300ms}"
	p.writeConfig(t)
	t.Cleanup(func() { dropSlot(t, "connectd_"+p.name) })
	p.sync(t) // the snapshot, complete, before the writer starts
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	w := &writer{conn: connect(t, dsn), rng: rand.New(rand.NewPCG(seed, 1)), nextID: initial + 1}
	for i := 1; i <= initial; i++ {
		w.live = append(w.live, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	lw := &leaseWorld{p: p, conn: conn, w: w, db: lakedb.DuckDB(t), initial: initial}
	lw.stop = func() { cancel(); <-done }
	t.Cleanup(lw.stop)
	return lw
}

// waitLake waits until the lake holds more than n rows and the writer made more
// than made changes.
func (lw *leaseWorld) waitLake(t *testing.T, d *daemon, what string) {
	t.Helper()
	before, made := lakeCount(t, lw.db, lw.p.tableDir(t, "public", "accounts")), lw.w.changes()
	waitFor(t, 60*time.Second, d, what, func() (bool, string) {
		n := lakeCount(t, lw.db, lw.p.tableDir(t, "public", "accounts"))
		return n > before && lw.w.changes() > made, fmt.Sprintf("%d lake rows (had %d), writer made %d changes (had %d)", n, before, lw.w.changes(), made)
	})
}

// finish stops the writer, catches up with a sync and reconciles: every change of
// the writer's log exactly once and in commit order, no _pos twice, and the lake
// rebuilt by the latest _pos per key equal to the table.
func (lw *leaseWorld) finish(t *testing.T) {
	t.Helper()
	lw.stop()
	if err := lw.w.failure(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	lw.p.sync(t)
	rows := readTable(t, lw.db, lw.p.tableDir(t, "public", "accounts"), "CAST(id AS VARCHAR) AS id", "CAST(v AS VARCHAR) AS v", "note")
	checkPositions(t, rows)
	var snap, stream []row
	for _, r := range rows {
		if r.val("_op") == "r" {
			snap = append(snap, r)
		} else {
			stream = append(stream, r)
		}
	}
	if len(snap) != lw.initial {
		t.Errorf("lake has %d snapshot rows, want %d", len(snap), lw.initial)
	}
	missing := 0
	for i := 0; i < max(len(stream), len(lw.w.log)); i++ {
		var got, want string
		if i < len(stream) {
			got = stream[i].val("_op") + " " + stream[i].val("id")
			if stream[i].val("_op") != "d" {
				got += " v=" + stream[i].val("v")
			}
		}
		if i < len(lw.w.log) {
			c := lw.w.log[i]
			want = c.op + " " + strconv.Itoa(c.id)
			if c.op != "d" {
				want += " v=" + strconv.Itoa(c.v)
			}
		}
		if got != want {
			if missing < 10 {
				t.Errorf("change %d of %d: lake has %q, writer made %q", i, len(lw.w.log), got, want)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d changes differ (lake has %d streamed records)", missing, len(lw.w.log), len(stream))
	}
	compareTable(t, rebuild(rows, "id"),
		pgRows(t, lw.conn, "SELECT id::text AS id, v::text AS v, note FROM public.accounts"), "id", "v", "note")
	t.Logf("%d changes, %d lake records", len(lw.w.log), len(rows))
}

// TestSyncAndResetRefuseAConnectorThatARunHolds: a cron `connectd sync` (and an
// `offsets reset`) on the config of a running daemon exits non-zero at once, naming
// the daemon's host and pid, and changes nothing; the daemon goes on, and the lake
// ends equal to the source with every change once.
func TestSyncAndResetRefuseAConnectorThatARunHolds(t *testing.T) {
	lw := newLeaseWorld(t, "lease_sync", false, nil)
	d := startRun(t, lw.p.config)
	lw.waitLake(t, d, "the daemon to write to the lake")

	for i := 0; i < 3; i++ {
		r := connectd(t, 60*time.Second, "sync", "-c", lw.p.config)
		want := fmt.Sprintf("connector %s is held by host ", lw.p.name)
		if r.code == 0 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, fmt.Sprintf(" pid %d since ", d.proc.Pid())) {
			t.Fatalf("sync while a run holds the connector: want a non-zero exit naming pid %d, got %s", d.proc.Pid(), r)
		}
		if !strings.Contains(r.stderr, "wait for that process to finish or stop it") {
			t.Errorf("sync's error does not say what to do: %s", r.stderr)
		}
	}
	before := connectd(t, 30*time.Second, "offsets", "show", "-c", lw.p.config, lw.p.name)
	r := connectd(t, 30*time.Second, "offsets", "reset", "-c", lw.p.config, lw.p.name)
	if r.code == 0 || !strings.Contains(r.stderr, fmt.Sprintf(" pid %d since ", d.proc.Pid())) || !strings.Contains(r.stderr, "stop that process first") {
		t.Fatalf("offsets reset while a run holds the connector: want a non-zero exit naming pid %d, got %s", d.proc.Pid(), r)
	}
	after := connectd(t, 30*time.Second, "offsets", "show", "-c", lw.p.config, lw.p.name)
	if strings.Contains(after.stdout, "no committed position") || !strings.Contains(before.stdout, "position:") {
		t.Fatalf("the refused reset changed the offset:\nbefore: %s\nafter: %s", before.stdout, after.stdout)
	}
	lw.waitLake(t, d, "the daemon to go on writing")
	if !d.running() {
		t.Fatalf("the daemon stopped: %s", d.stop(t, syscall.SIGTERM))
	}
	d.stopClean(t)
	lw.finish(t)
}

// TestTwoDaemonsOnOneConfigNeverInterleave runs two `connectd run` on one config:
// the second waits, naming the first, and takes the connector over when the first is
// killed; a third waits for the second and takes over at its clean stop. Once per
// kind of offsets store; the lake ends equal to the source with every change once.
func TestTwoDaemonsOnOneConfigNeverInterleave(t *testing.T) {
	t.Run("file", func(t *testing.T) { twoDaemons(t, false, nil) })
	t.Run("s3", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", s3Server(t).AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", s3Server(t).SecretKey)
		twoDaemons(t, true, func(p *pipe) string {
			bucket := p.bucket + "-offsets"
			if err := s3Server(t).CreateBucket(context.Background(), bucket); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("s3://%s/offsets?lease=6s&region=%s&path_style=true&endpoint=%s", bucket, s3Server(t).Region, url.QueryEscape(s3Server(t).Endpoint))
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, _ := newDatabase(t, "e2e_lease_offsets")
		twoDaemons(t, false, func(*pipe) string { return dsn })
	})
}

func twoDaemons(t *testing.T, s3Lake bool, offsetsURL func(*pipe) string) {
	lw := newLeaseWorld(t, "lease_two", s3Lake, offsetsURL)
	a := startRun(t, lw.p.config)
	lw.waitLake(t, a, "the first daemon to write to the lake")
	b := startRun(t, lw.p.config)
	waitFor(t, 30*time.Second, b, "the second daemon to wait for the first", func() (bool, string) {
		s := b.stderr.String()
		return strings.Contains(s, "another process holds the connector") && strings.Contains(s, fmt.Sprintf(" pid %d since ", a.proc.Pid())), tail(s, 5)
	})
	lw.waitLake(t, a, "the first daemon to go on writing")
	if strings.Contains(b.stderr.String(), "took the connector over") {
		t.Fatalf("the second daemon took the connector while the first ran:\n%s", b.stderr.String())
	}
	if r := a.stop(t, syscall.SIGKILL); r.code != -1 {
		t.Fatalf("SIGKILL of the first daemon: %s", r)
	}
	waitFor(t, 60*time.Second, b, "the second daemon to take over", func() (bool, string) {
		return strings.Contains(b.stderr.String(), "took the connector over"), tail(b.stderr.String(), 5)
	})
	lw.waitLake(t, b, "the second daemon to write to the lake")
	c := startRun(t, lw.p.config)
	waitFor(t, 30*time.Second, c, "the third daemon to wait for the second", func() (bool, string) {
		s := c.stderr.String()
		return strings.Contains(s, fmt.Sprintf(" pid %d since ", b.proc.Pid())), tail(s, 5)
	})
	b.stopClean(t)
	waitFor(t, 30*time.Second, c, "the third daemon to take over at the second's clean stop", func() (bool, string) {
		return strings.Contains(c.stderr.String(), "took the connector over"), tail(c.stderr.String(), 5)
	})
	lw.waitLake(t, c, "the third daemon to write to the lake")
	c.stopClean(t)
	lw.finish(t)
}

// dropSlot removes a test's replication slot once its processes are gone (a slot
// stays active for a moment after its walsender's client died), so that the package's
// tests do not run the server out of slots.
func dropSlot(t *testing.T, slot string) {
	for i := 0; i < 50; i++ {
		err := pgServer(t).Exec(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("could not drop replication slot %s", slot)
}
