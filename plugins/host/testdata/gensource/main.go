// Command gensource is a test and benchmark source plugin: it generates Records
// rows of a fixed table, position = the row number as 8 big-endian bytes. With
// hang set it stops answering the named call ("ack", "open"); with crash_after it
// exits abruptly once it has produced that many rows.
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/connectd/connectd/plugins/sdk"
	"github.com/connectd/connectd/record"
)

// Config is the plugin's config.
type Config struct {
	Records    uint64 `json:"records"`
	Batch      int    `json:"batch"`
	Hang       string `json:"hang"`
	CrashAfter uint64 `json:"crash_after"`
}

type source struct {
	cfg  Config
	env  sdk.Env
	next uint64
}

// Schema is the generated table.
var Schema = record.NewSchema("gen", "rows", []record.Column{
	{Name: "id", SourceType: "bigint", Type: record.Type{Kind: record.KindInt64}, Key: true},
	{Name: "amount", SourceType: "numeric(12,2)", Type: record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 2}, Nullable: true},
	{Name: "name", SourceType: "text", Type: record.Type{Kind: record.KindString}, Nullable: true},
	{Name: "at", SourceType: "timestamptz", Type: record.Type{Kind: record.KindTimestampTZ}, Nullable: true},
	{Name: "flag", SourceType: "boolean", Type: record.Type{Kind: record.KindBool}, Nullable: true},
})

// Row returns generated row n (1-based), the same in every run.
func Row(n uint64) record.Record {
	var pos [8]byte
	binary.BigEndian.PutUint64(pos[:], n)
	ts := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
	return record.Record{
		Op: record.OpCreate, Schema: Schema, Pos: pos[:], CommitTS: ts,
		After: []record.Value{int64(n), record.Decimal(fmt.Sprintf("%d.%02d", n, n%100)), fmt.Sprintf("row-%d", n),
			record.TimestampOf(ts), n%2 == 0},
	}
}

func (s *source) Open(ctx context.Context, cfg Config, pos record.Position, env sdk.Env) error {
	if cfg.Hang == "open" {
		select {}
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	s.cfg, s.env, s.next = cfg, env, 1
	if len(pos) == 8 {
		s.next = binary.BigEndian.Uint64(pos) + 1
	}
	return nil
}

func (s *source) Read(ctx context.Context) ([]record.Record, error) {
	if s.next > s.cfg.Records {
		if s.env.Sync {
			return nil, io.EOF
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
			return nil, nil
		}
	}
	if s.cfg.CrashAfter > 0 && s.next > s.cfg.CrashAfter {
		os.Exit(3)
	}
	n := min(uint64(s.cfg.Batch), s.cfg.Records-s.next+1)
	out := make([]record.Record, n)
	for i := range out {
		out[i] = Row(s.next)
		s.next++
	}
	return out, nil
}

func (s *source) Ack(ctx context.Context, pos record.Position) error {
	if s.cfg.Hang == "ack" {
		select {}
	}
	return nil
}

func (s *source) Close(context.Context) error { return nil }

func main() {
	sdk.ServeSource[Config](sdk.Info{Name: "gensource", Version: "test"}, &source{})
}
