package sdk

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

type countConfig struct {
	Records uint64 `json:"records"`
	Panic   bool   `json:"panic"`
}

// counter emits records 1..Records, restarting from the first record of a batch of
// 10 (as a source whose unit of work is larger than a record may), so that the
// embedding has records at or before the committed position to drop.
type counter struct {
	cfg    countConfig
	next   uint64
	acked  record.Position
	closed bool
}

var countSchema = record.NewSchema("t", "n", []record.Column{{Name: "n", Type: record.Type{Kind: record.KindInt64}, Key: true}})

func pos(n uint64) record.Position { return binary.BigEndian.AppendUint64(nil, n) }

func (c *counter) Open(_ context.Context, cfg countConfig, p record.Position, _ Env) error {
	c.cfg, c.next = cfg, 1
	if p != nil {
		c.next = binary.BigEndian.Uint64(p)/10*10 + 1
	}
	return nil
}

func (c *counter) Read(context.Context) ([]record.Record, error) {
	if c.cfg.Panic {
		panic("boom")
	}
	if c.next > c.cfg.Records {
		return nil, io.EOF
	}
	var out []record.Record
	for ; c.next <= c.cfg.Records && len(out) < 7; c.next++ {
		out = append(out, record.Record{Op: record.OpCreate, Schema: countSchema, Pos: pos(c.next), After: []record.Value{int64(c.next)}})
	}
	return out, nil
}

func (c *counter) Ack(_ context.Context, p record.Position) error { c.acked = p; return nil }
func (c *counter) Close(context.Context) error                    { c.closed = true; return nil }

func TestEmbedSourceResumesAfterTheCommittedPosition(t *testing.T) {
	ctx := context.Background()
	impl := &counter{}
	src, err := EmbedSource[countConfig](impl, []byte(`{"records": 25}`), Env{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	err = src.Read(ctx, pos(13), func(_ context.Context, recs []record.Record) error {
		for _, r := range recs {
			got = append(got, r.After[0].(int64))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 12 || got[0] != 14 || got[11] != 25 {
		t.Fatalf("read %v, want 14..25", got)
	}
	if err := src.Ack(ctx, pos(25)); err != nil || impl.acked.Compare(pos(25)) != 0 {
		t.Fatalf("ack: err %v, the source saw %v", err, impl.acked)
	}
	if err := src.Close(ctx); err != nil || !impl.closed {
		t.Fatalf("close: err %v, closed %v", err, impl.closed)
	}
}

func TestEmbedSourceErrors(t *testing.T) {
	ctx := context.Background()
	_, err := EmbedSource[countConfig](&counter{}, []byte(`{"recrods": 1}`), Env{})
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), `unknown field "recrods"`) {
		t.Fatalf("bad config: err = %v, want a permanent error naming the field", err)
	}

	src, err := EmbedSource[countConfig](&counter{}, []byte(`{"records": 1, "panic": true}`), Env{})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Read(ctx, nil, func(context.Context, []record.Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "Read panicked: boom") {
		t.Fatalf("panic: err = %v", err)
	}

	stop := errors.New("destination full")
	src, _ = EmbedSource[countConfig](&counter{}, []byte(`{"records": 100}`), Env{})
	if err := src.Read(ctx, nil, func(context.Context, []record.Record) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("emit error: err = %v, want it returned as is", err)
	}
}

type collect struct {
	written, flushed int
	failFlush        bool
}

func (c *collect) Open(context.Context, countConfig, Env) error { return nil }
func (c *collect) Write(_ context.Context, recs []record.Record) error {
	c.written += len(recs)
	return nil
}
func (c *collect) Flush(context.Context) error {
	if c.failFlush {
		return Permanent(errors.New("disk is read-only"))
	}
	c.flushed = c.written
	return nil
}
func (c *collect) Close(context.Context) error { return nil }

func TestEmbedDestination(t *testing.T) {
	ctx := context.Background()
	impl := &collect{}
	dst, err := EmbedDestination[countConfig](ctx, impl, nil, Env{})
	if err != nil {
		t.Fatal(err)
	}
	recs := []record.Record{{Op: record.OpCreate, Schema: countSchema, Pos: pos(1), After: []record.Value{int64(1)}}}
	if err := dst.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if rows, _ := dst.Buffered(); rows != 1 {
		t.Fatalf("buffered %d rows, want 1", rows)
	}
	if err := dst.Flush(ctx); err != nil || impl.flushed != 1 {
		t.Fatalf("flush: err %v, flushed %d", err, impl.flushed)
	}
	if rows, _ := dst.Buffered(); rows != 0 {
		t.Fatalf("buffered %d rows after a flush, want 0", rows)
	}
	impl.failFlush = true
	if err := dst.Flush(ctx); !connector.IsPermanent(err) || !strings.Contains(err.Error(), "flush: disk is read-only") {
		t.Fatalf("failed flush: err = %v, want a permanent error", err)
	}
}
