package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

func TestProtocolVersionMismatchNamesBothVersions(t *testing.T) {
	// A plugin from the future, and one built against protocol 1 (per-value
	// messages), which this connectd no longer reads.
	for _, theirs := range []int{99, 1} {
		k := SourceKind{Dir: pluginDir(t)}
		_, err := k.Open(ctxT(t), sourceParams(t, "v", &Config{Name: fmt.Sprintf("rawsource-v%d", theirs)}, connector.ModeStream))
		if err == nil {
			t.Fatalf("a plugin speaking protocol %d was accepted", theirs)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("speaks plugin protocol version %d", theirs)) ||
			!strings.Contains(err.Error(), fmt.Sprintf("this connectd speaks version %d", ProtocolVersion)) || !connector.IsPermanent(err) {
			t.Fatalf("err = %v (permanent %v)", err, connector.IsPermanent(err))
		}
	}
}

func TestChecksumMismatchIsRefused(t *testing.T) {
	path := filepath.Join(pluginDir(t), "gensource")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	good := hex.EncodeToString(sum[:])
	sum[0] ^= 0xff
	bad := hex.EncodeToString(sum[:])

	k := SourceKind{}
	_, err = k.Open(ctxT(t), sourceParams(t, "pin", &Config{Path: path, SHA256: bad}, connector.ModeStream))
	if err == nil || !strings.Contains(err.Error(), "refusing to run") || !strings.Contains(err.Error(), good) || !connector.IsPermanent(err) {
		t.Fatalf("wrong pin: err = %v", err)
	}
	src, err := k.Open(ctxT(t), sourceParams(t, "pin", &Config{Path: path, SHA256: strings.ToUpper(good)}, connector.ModeStream))
	if err != nil {
		t.Fatalf("right pin: %v", err)
	}
	_ = src.Close(context.Background())
}

func TestMissingPluginIsPermanent(t *testing.T) {
	_, err := SourceKind{Dir: pluginDir(t)}.Open(ctxT(t), sourceParams(t, "x", &Config{Name: "nope"}, connector.ModeStream))
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), filepath.Join(pluginDir(t), "nope")) {
		t.Fatalf("err = %v", err)
	}
	_, err = SourceKind{}.Open(ctxT(t), sourceParams(t, "x", &Config{Name: "gensource"}, connector.ModeStream))
	if err == nil || !strings.Contains(err.Error(), "plugins.dir is not set") {
		t.Fatalf("no dir: err = %v", err)
	}
	_, err = DestinationKind{Dir: pluginDir(t)}.Open(ctxT(t), destinationParams(t, "x", &Config{Name: "gensource"}))
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "is not a destination plugin") {
		t.Fatalf("wrong kind: err = %v", err)
	}
}

func TestBadPluginConfigIsPermanent(t *testing.T) {
	src, err := SourceKind{Dir: pluginDir(t)}.Open(ctxT(t), sourceParams(t, "c", &Config{Name: "gensource",
		Config: map[string]any{"records": 5, "recrods": 5}}, connector.ModeSync))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	err = src.Read(ctxT(t), nil, func(context.Context, []record.Record) error { return nil })
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), `unknown field "recrods"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestHangingAckTimesOutAndKillsThePlugin(t *testing.T) {
	k := SourceKind{Dir: pluginDir(t), Timeouts: Timeouts{Call: 300 * time.Millisecond}}
	s, err := k.Open(ctxT(t), sourceParams(t, "h", &Config{Name: "gensource", Config: map[string]any{"records": 3, "hang": "ack"}}, connector.ModeSync))
	if err != nil {
		t.Fatal(err)
	}
	src := s.(*Source)
	defer src.Close(context.Background())
	var last record.Position
	if err := src.Read(ctxT(t), nil, func(_ context.Context, recs []record.Record) error {
		last = recs[len(recs)-1].Pos
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err = src.Ack(ctxT(t), last)
	if err == nil || !strings.Contains(err.Error(), "ack: no answer within 300ms; the plugin was killed") || connector.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	if !src.c.exited(5 * time.Second) {
		t.Fatal("the hung plugin is still running")
	}
}

func TestHangingFlushTimesOut(t *testing.T) {
	k := DestinationKind{Dir: pluginDir(t), Timeouts: Timeouts{Flush: 300 * time.Millisecond}}
	d, err := k.Open(ctxT(t), destinationParams(t, "h", &Config{Name: "discarddest", Config: map[string]any{"hang": "flush"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	if err := d.Write(ctxT(t), genRows(1, 10)); err != nil {
		t.Fatal(err)
	}
	err = d.Flush(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "flush: no answer within 300ms; the plugin was killed") {
		t.Fatalf("err = %v", err)
	}
	if err2 := d.Write(ctxT(t), genRows(11, 1)); err2 == nil {
		t.Fatal("a write after a failed flush succeeded")
	}
}

// The plugin's own `timeouts:` in the config win over the kind's.
func TestConfiguredTimeoutsOverrideTheKinds(t *testing.T) {
	k := DestinationKind{Dir: pluginDir(t), Timeouts: Timeouts{Flush: time.Hour}}
	pc := &Config{Name: "discarddest", Config: map[string]any{"hang": "flush"},
		Timeouts: ConfigTimeouts{Flush: 400 * time.Millisecond}}
	d, err := k.Open(ctxT(t), destinationParams(t, "h", pc))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	if err := d.Write(ctxT(t), genRows(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctxT(t)); err == nil || !strings.Contains(err.Error(), "flush: no answer within 400ms; the plugin was killed") {
		t.Fatalf("err = %v", err)
	}
}

func TestStoppedSourceIsDetectedByMissingHeartbeats(t *testing.T) {
	k := SourceKind{Dir: pluginDir(t), Timeouts: Timeouts{Idle: 500 * time.Millisecond}}
	s, err := k.Open(ctxT(t), sourceParams(t, "idle", &Config{Name: "gensource", Config: map[string]any{"records": 10}}, connector.ModeStream))
	if err != nil {
		t.Fatal(err)
	}
	src := s.(*Source)
	defer src.Close(context.Background())
	got := 0
	err = src.Read(ctxT(t), nil, func(_ context.Context, recs []record.Record) error {
		got += len(recs)
		if got == 10 {
			// Idle but alive, it heartbeats; frozen, it does not.
			pid := src.c.client.ReattachConfig().Pid
			time.AfterFunc(1500*time.Millisecond, func() { _ = syscall.Kill(pid, syscall.SIGSTOP) })
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "read: no answer within 500ms; the plugin was killed") {
		t.Fatalf("err = %v", err)
	}
	if got != 10 {
		t.Fatalf("got %d records", got)
	}
}

func TestCrashedPluginIsATransientError(t *testing.T) {
	k := SourceKind{Dir: pluginDir(t)}
	s, err := k.Open(ctxT(t), sourceParams(t, "crash", &Config{Name: "gensource", Config: map[string]any{"records": 100, "batch": 10, "crash_after": 50}}, connector.ModeSync))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	got := 0
	err = s.Read(ctxT(t), nil, func(_ context.Context, recs []record.Record) error { got += len(recs); return nil })
	if err == nil || connector.IsPermanent(err) || !strings.Contains(err.Error(), "exited unexpectedly") {
		t.Fatalf("err = %v", err)
	}
	if got > 50 {
		t.Fatalf("got %d records from a plugin that crashed after 50", got)
	}
}

func TestMalformedBatchIsAnErrorNotAPanic(t *testing.T) {
	s, err := SourceKind{Dir: pluginDir(t)}.Open(ctxT(t), sourceParams(t, "raw", &Config{Name: "rawsource"}, connector.ModeStream))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	err = s.Read(ctxT(t), nil, func(context.Context, []record.Record) error {
		return errors.New("emitted a malformed record")
	})
	if err == nil || !strings.Contains(err.Error(), "malformed batch: record 0: unknown schema id 7") {
		t.Fatalf("err = %v", err)
	}
}

// genRows builds n rows of the gensource table starting at row first, in process.
func genRows(first uint64, n int) []record.Record {
	s := record.NewSchema("gen", "rows", []record.Column{{Name: "id", Type: record.Type{Kind: record.KindInt64}, Key: true}})
	out := make([]record.Record, n)
	for i := range out {
		id := first + uint64(i)
		out[i] = record.Record{Op: record.OpCreate, Schema: s, After: []record.Value{int64(id)}, Pos: pos8(id), CommitTS: time.Unix(int64(id), 0).UTC()}
	}
	return out
}

func pos8(n uint64) record.Position {
	p := make(record.Position, 8)
	for i := 7; i >= 0; i-- {
		p[i] = byte(n)
		n >>= 8
	}
	return p
}
