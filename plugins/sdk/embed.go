package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// EmbedSource runs a plugin's Source inside the calling process, as a
// connector.Source, with no plugin process and no gRPC in between. It is for a
// plugin author's own tests (drive it with connectd's pipeline package and a real
// destination) and for measuring what the plugin boundary costs: bench/plugin runs
// the same connector both ways. The config is decoded as it is for a plugin.
//
// The contract is the one ServeSource gives: records at or before the committed
// position are dropped, Read's io.EOF ends a sync, panics become errors.
func EmbedSource[C any](src Source[C], configJSON []byte, env Env) (connector.Source, error) {
	cfg, err := decodeConfig[C](configJSON)
	if err != nil {
		return nil, connector.Permanent(err)
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	return &embeddedSource[C]{impl: src, cfg: cfg, env: env}, nil
}

type embeddedSource[C any] struct {
	impl Source[C]
	cfg  C
	env  Env

	mu     sync.Mutex
	opened bool
}

func (s *embeddedSource[C]) Read(ctx context.Context, start record.Position, emit connector.EmitFunc) error {
	s.mu.Lock()
	if s.opened {
		s.mu.Unlock()
		return errors.New("embedded source: Read called twice; open a new one to read again")
	}
	s.opened = true
	s.mu.Unlock()
	log := s.env.Logger
	if err := call(log, "Open", func() error { return s.impl.Open(ctx, s.cfg, start, s.env) }); err != nil {
		return embedError("open", err)
	}
	for {
		var recs []record.Record
		err := call(log, "Read", func() (err error) { recs, err = s.impl.Read(ctx); return err })
		if start != nil { // a source may restart at the beginning of its unit of work
			keep := recs[:0]
			for _, r := range recs {
				if r.Pos.Compare(start) > 0 {
					keep = append(keep, r)
				}
			}
			recs = keep
		}
		if len(recs) > 0 {
			if eerr := emit(ctx, recs); eerr != nil {
				return eerr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return embedError("read", err)
		}
	}
}

func (s *embeddedSource[C]) Ack(ctx context.Context, pos record.Position) error {
	return embedError("ack", call(s.env.Logger, "Ack", func() error { return s.impl.Ack(ctx, pos) }))
}

func (s *embeddedSource[C]) Close(ctx context.Context) error {
	s.mu.Lock()
	opened := s.opened
	s.mu.Unlock()
	if !opened {
		return nil
	}
	return embedError("close", call(s.env.Logger, "Close", func() error { return s.impl.Close(ctx) }))
}

// EmbedDestination runs a plugin's Destination inside the calling process, as a
// connector.Destination: see EmbedSource. It is opened here, at once.
func EmbedDestination[C any](ctx context.Context, dst Destination[C], configJSON []byte, env Env) (connector.Destination, error) {
	cfg, err := decodeConfig[C](configJSON)
	if err != nil {
		return nil, connector.Permanent(err)
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if err := call(env.Logger, "Open", func() error { return dst.Open(ctx, cfg, env) }); err != nil {
		return nil, embedError("open", err)
	}
	return &embeddedDestination[C]{impl: dst, log: env.Logger}, nil
}

type embeddedDestination[C any] struct {
	impl Destination[C]
	log  *slog.Logger
	rows int64
}

func (d *embeddedDestination[C]) Write(ctx context.Context, recs []record.Record) error {
	if err := call(d.log, "Write", func() error { return d.impl.Write(ctx, recs) }); err != nil {
		return embedError("write", err)
	}
	d.rows += int64(len(recs))
	return nil
}

// Buffered reports rows only: a plugin does not say how many bytes it holds.
func (d *embeddedDestination[C]) Buffered() (rows, bytes int64) { return d.rows, 0 }

func (d *embeddedDestination[C]) Flush(ctx context.Context) error {
	if err := call(d.log, "Flush", func() error { return d.impl.Flush(ctx) }); err != nil {
		return embedError("flush", err)
	}
	d.rows = 0
	return nil
}

func (d *embeddedDestination[C]) Close(ctx context.Context) error {
	return embedError("close", call(d.log, "Close", func() error { return d.impl.Close(ctx) }))
}

// embedError keeps an author's Permanent mark visible to connectd's runtime, as the
// gRPC host does with the status code ServeSource gives it.
func embedError(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case IsPermanent(err):
		return connector.Permanent(fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}
