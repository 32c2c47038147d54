// Command envsource is a test source plugin that reports the environment it was
// started with: one row per variable (name, value) of the table plugin.env, then,
// in sync mode, the end. It lets a test see from outside what a plugin process can
// read.
package main

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/connectd/connectd/plugins/sdk"
	"github.com/connectd/connectd/record"
)

// Config is the plugin's config: none.
type Config struct{}

var schema = record.NewSchema("plugin", "env", []record.Column{
	{Name: "name", SourceType: "text", Type: record.Type{Kind: record.KindString}, Key: true},
	{Name: "value", SourceType: "text", Type: record.Type{Kind: record.KindString}, Nullable: true},
})

type source struct {
	env  sdk.Env
	rows []record.Record
	done bool
}

func (s *source) Open(_ context.Context, _ Config, pos record.Position, env sdk.Env) error {
	s.env = env
	vars := os.Environ()
	sort.Strings(vars)
	at := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for i, kv := range vars {
		name, value, _ := strings.Cut(kv, "=")
		p := binary.BigEndian.AppendUint32(nil, uint32(i+1))
		if record.Position(p).Compare(pos) <= 0 {
			continue
		}
		s.rows = append(s.rows, record.Record{Op: record.OpRead, Schema: schema, Pos: p, CommitTS: at,
			After: []record.Value{name, value}})
	}
	return nil
}

func (s *source) Read(ctx context.Context) ([]record.Record, error) {
	if !s.done {
		s.done = true
		return s.rows, nil
	}
	if s.env.Sync {
		return nil, io.EOF
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *source) Ack(context.Context, record.Position) error { return nil }
func (s *source) Close(context.Context) error                { return nil }

func main() {
	sdk.ServeSource[Config](sdk.Info{Name: "envsource", Version: "test"}, &source{})
}
