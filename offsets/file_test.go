package offsets

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/connectd/connectd/record"
)

func newStore(t *testing.T) *File {
	t.Helper()
	f, err := NewFile(filepath.Join(t.TempDir(), "offsets"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadOfUnknownConnectorReturnsNil(t *testing.T) {
	f := newStore(t)
	pos, err := f.Load(context.Background(), "orders")
	if err != nil || pos != nil {
		t.Fatalf("Load = %v, %v; want nil, nil", pos, err)
	}
}

func TestCommitThenLoadReturnsLastPosition(t *testing.T) {
	ctx := context.Background()
	f := newStore(t)
	for _, p := range []record.Position{{1, 2, 3}, {1, 2, 4}, {0xff}} {
		if err := f.Commit(ctx, "orders", p); err != nil {
			t.Fatal(err)
		}
		got, err := f.Load(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("Load = %x, want %x", got, p)
		}
	}
	// A second store on the same directory (a restart) sees the same position.
	g, err := NewFile(f.Dir())
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.Load(ctx, "orders")
	if err != nil || !reflect.DeepEqual(got, record.Position{0xff}) {
		t.Fatalf("after reopen Load = %x, %v", got, err)
	}
}

func TestOffsetFileIsReadableJSON(t *testing.T) {
	ctx := context.Background()
	f := newStore(t)
	if err := f.Commit(ctx, "orders", record.Position{0xab, 0xcd}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(f.Dir(), "orders.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m["connector"] != "orders" || m["position"] != "abcd" || m["committed_at"] == nil {
		t.Fatalf("file content = %s", data)
	}
	entries, err := os.ReadDir(f.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only orders.json (temp files must be renamed)", len(entries))
	}
}

func TestCommitRejectsEmptyPositionAndName(t *testing.T) {
	ctx := context.Background()
	f := newStore(t)
	if err := f.Commit(ctx, "orders", nil); err == nil {
		t.Fatal("Commit(nil) succeeded")
	}
	if err := f.Commit(ctx, "", record.Position{1}); err == nil {
		t.Fatal("Commit with empty name succeeded")
	}
}

func TestCorruptFileErrorNamesTheFile(t *testing.T) {
	ctx := context.Background()
	cases := map[string]string{
		"torn":            `{"connector": "orders", "posi`,
		"empty":           ``,
		"bad hex":         `{"connector": "orders", "position": "zz", "committed_at": "2024-01-01T00:00:00Z"}`,
		"empty position":  `{"connector": "orders", "position": "", "committed_at": "2024-01-01T00:00:00Z"}`,
		"other connector": `{"connector": "shop", "position": "01", "committed_at": "2024-01-01T00:00:00Z"}`,
		"unknown field":   `{"connector": "orders", "position": "01", "pos": "02"}`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			f := newStore(t)
			path := filepath.Join(f.Dir(), "orders.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			pos, err := f.Load(ctx, "orders")
			if err == nil {
				t.Fatalf("Load = %x, want an error", pos)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name %s", err, path)
			}
		})
	}
}

func TestResetForgetsPosition(t *testing.T) {
	ctx := context.Background()
	f := newStore(t)
	if err := f.Reset(ctx, "orders", nil); err != nil {
		t.Fatalf("Reset without a position: %v", err)
	}
	if err := f.Commit(ctx, "orders", record.Position{1}); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(ctx, "shop", record.Position{2}); err != nil {
		t.Fatal(err)
	}
	if err := f.Reset(ctx, "orders", nil); err != nil {
		t.Fatal(err)
	}
	pos, err := f.Load(ctx, "orders")
	if err != nil || pos != nil {
		t.Fatalf("Load after Reset = %x, %v", pos, err)
	}
	pos, err = f.Load(ctx, "shop")
	if err != nil || !reflect.DeepEqual(pos, record.Position{2}) {
		t.Fatalf("Reset touched another connector: %x, %v", pos, err)
	}
}

func TestListNamesCommittedConnectorsOnly(t *testing.T) {
	ctx := context.Background()
	f := newStore(t)
	names := []string{"orders", "Orders", "shop-eu", "a.b/c d", "x_1"}
	for i, n := range names {
		if err := f.Commit(ctx, n, record.Position{byte(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	// Leftovers of an interrupted commit and unrelated files are not connectors.
	for _, junk := range []string{".orders.json.tmp-123", "README.txt", "bad!.json"} {
		if err := os.WriteFile(filepath.Join(f.Dir(), junk), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Orders", "a.b/c d", "orders", "shop-eu", "x_1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
	// Names differing only in case keep separate positions.
	a, _ := f.Load(ctx, "orders")
	b, _ := f.Load(ctx, "Orders")
	if a.Compare(b) == 0 {
		t.Fatalf("orders and Orders share a position %x", a)
	}
}

func TestEscapeNameRoundTrips(t *testing.T) {
	for _, n := range []string{"orders", "Orders", "ORDERS", "a.b", "a/b", "../x", "%41", "!a", "é", "with space"} {
		e := escapeName(n)
		if strings.ContainsAny(e, "/.\\ ") {
			t.Errorf("escapeName(%q) = %q: not a safe file name", n, e)
		}
		got, ok := unescapeName(e)
		if !ok || got != n {
			t.Errorf("unescapeName(escapeName(%q)) = %q, %v", n, got, ok)
		}
	}
}

func TestConcurrentCommitsToDifferentConnectors(t *testing.T) {
	ctx := context.Background()
	f := newStore(t)
	const connectors, commits = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, connectors*commits)
	for c := 0; c < connectors; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			name := fmt.Sprintf("conn%d", c)
			for i := 1; i <= commits; i++ {
				if err := f.Commit(ctx, name, record.Position{byte(c), byte(i)}); err != nil {
					errs <- err
					return
				}
				// Another goroutine reading the same connector never sees a torn file.
				if _, err := f.Load(ctx, name); err != nil {
					errs <- err
					return
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for c := 0; c < connectors; c++ {
		pos, err := f.Load(ctx, fmt.Sprintf("conn%d", c))
		if err != nil {
			t.Fatal(err)
		}
		if want := (record.Position{byte(c), commits}); !reflect.DeepEqual(pos, want) {
			t.Fatalf("conn%d = %x, want %x", c, pos, want)
		}
	}
	names, err := f.List(ctx)
	if err != nil || len(names) != connectors {
		t.Fatalf("List = %q, %v", names, err)
	}
}

// Commits racing each other land in some order; one below an earlier one is refused
// (an offset never moves backwards), so the highest is what stays.
func TestConcurrentCommitsToOneConnectorKeepTheHighest(t *testing.T) {
	ctx := context.Background()
	f := newStore(t)
	var wg sync.WaitGroup
	for i := 1; i <= 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := f.Commit(ctx, "orders", record.Position{byte(i)}); err != nil && !strings.Contains(err.Error(), "never moves backwards") {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	pos, err := f.Load(ctx, "orders")
	if err != nil || !reflect.DeepEqual(pos, record.Position{16}) {
		t.Fatalf("Load = %x, %v; want 10", pos, err)
	}
}

func TestCanceledContextIsHonoured(t *testing.T) {
	f := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Commit(ctx, "orders", record.Position{1}); err == nil {
		t.Fatal("Commit with a canceled context succeeded")
	}
	if _, err := f.Load(ctx, "orders"); err == nil {
		t.Fatal("Load with a canceled context succeeded")
	}
}

func TestNewFileOnAFileFails(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFile(p); err == nil {
		t.Fatal("NewFile on a regular file succeeded")
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cases := []struct {
		url     string
		wantDir string // "" means an error is expected
		wantErr string
	}{
		{url: "file://" + filepath.Join(dir, "abs"), wantDir: filepath.Join(dir, "abs")},
		{url: "file://rel/offsets", wantDir: "rel/offsets"},
		{url: "file://./offsets", wantDir: "./offsets"},
		{url: "file://", wantErr: "names no directory"},
		{url: "postgres://127.0.0.1:1/db?sslmode=disable&connect_timeout=2", wantErr: "connect to postgres://"},
		{url: "s3:///offsets", wantErr: "names no bucket"},
		{url: "s3://bucket/offsets?pathstyle=true", wantErr: `unknown parameter "pathstyle"`},
		{url: "s3://bucket/offsets?path_style=maybe", wantErr: "want true or false"},
		{url: "ftp://x/y", wantErr: "unknown store"},
		{url: "/var/lib/connectd", wantErr: "not a URL"},
	}
	for _, c := range cases {
		s, err := Open(context.Background(), c.url)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Open(%q) error = %v, want one containing %q", c.url, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", c.url, err)
			continue
		}
		if got := s.(*File).Dir(); got != c.wantDir {
			t.Errorf("Open(%q) dir = %q, want %q", c.url, got, c.wantDir)
		}
		if err := s.Commit(context.Background(), "x", record.Position{1}); err != nil {
			t.Errorf("Open(%q) commit: %v", c.url, err)
		}
	}
}
