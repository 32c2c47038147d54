package parquet

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStagingOfTwoLiveDestinationsIsSeparate(t *testing.T) {
	parent := t.TempDir()
	a, err := openStaging(parent, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	defer a.release()
	staged := filepath.Join(a.dir, "1.parquet.tmp")
	if err := os.WriteFile(staged, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A second destination of the same connector name (another process, another
	// config) must not sweep the first one's files while it holds its lock.
	b, err := openStaging(parent, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	defer b.release()
	if a.dir == b.dir {
		t.Fatalf("both destinations stage in %s", a.dir)
	}
	if _, err := os.Stat(staged); err != nil {
		t.Fatalf("the live destination's staged file was removed: %v", err)
	}
}

func TestStagingLeftByACrashIsSwept(t *testing.T) {
	parent := t.TempDir()
	crashed, err := openStaging(parent, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crashed.dir, "1.parquet.tmp"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	crashed.lock.Close() // what the kernel does when the process dies
	orphan := filepath.Join(parent, "run-orphan")
	if err := os.Mkdir(orphan, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * stagingOrphanAge)
	if err := os.Chtimes(orphan, old, old); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(parent, "run-fresh") // being created by someone right now
	if err := os.Mkdir(fresh, 0o700); err != nil {
		t.Fatal(err)
	}

	next, err := openStaging(parent, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	defer next.release()
	for dir, want := range map[string]bool{crashed.dir: false, orphan: false, fresh: true, next.dir: true} {
		_, err := os.Stat(dir)
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(dir), got, want)
		}
	}
	if err := next.release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(next.dir); !os.IsNotExist(err) {
		t.Errorf("release left %s behind", next.dir)
	}
}
