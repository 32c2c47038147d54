package host

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/plugins/internal/wire"
	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
	"github.com/connectd/connectd/record"
)

// SourceKind is `type: plugin` for sources; it implements connector.SourceKind.
type SourceKind struct {
	Dir      string // config plugins.dir, where plugins named by name are found
	Timeouts Timeouts
}

var _ connector.SourceKind = SourceKind{}

// Open starts the plugin process. The plugin's own Open (with the config and the
// committed position) is called by Read, which is given that position.
func (k SourceKind) Open(ctx context.Context, p connector.SourceParams) (connector.Source, error) {
	pc, _ := p.Config.Config.(*Config)
	if pc == nil {
		return nil, connector.Permanent(errors.New("plugin source: no plugin settings"))
	}
	cfg, err := configJSON(pc)
	if err != nil {
		return nil, connector.Permanent(err)
	}
	c, raw, err := launch(ctx, k.Dir, pc, wire.KindSource, p.Logger, k.Timeouts.withDefaults())
	if err != nil {
		return nil, err
	}
	if err := c.checkConfig(pc, configAt(p.Name, "source")); err != nil {
		c.client.Kill()
		return nil, err
	}
	st := p.Status
	if st == nil {
		st = connector.NopStatus{}
	}
	return &Source{c: c, rpc: raw.(pb.SourceClient), cfg: cfg, connector: p.Name, sync: p.Mode == connector.ModeSync, status: st}, nil
}

// Check starts the plugin and runs its checks.
func (k SourceKind) Check(ctx context.Context, p connector.SourceParams) []connector.CheckResult {
	pc, _ := p.Config.Config.(*Config)
	c, raw, res := checkStart(ctx, k.Dir, pc, wire.KindSource, p.Logger, k.Timeouts)
	if c == nil {
		return res
	}
	cl := raw.(pb.SourceClient)
	defer func() { _ = c.stop(ctx, cl.Close) }()
	cr, ok := c.configResult(pc, configAt(p.Name, "source"))
	if res = append(res, cr); !ok {
		return res
	}
	return append(res, runCheck(ctx, c, pc, p.Name, cl.Check)...)
}

// Discover starts the plugin and asks what it can read.
func (k SourceKind) Discover(ctx context.Context, p connector.SourceParams) ([]*record.Schema, error) {
	pc, _ := p.Config.Config.(*Config)
	if pc == nil {
		return nil, connector.Permanent(errors.New("plugin source: no plugin settings"))
	}
	cfg, err := configJSON(pc)
	if err != nil {
		return nil, connector.Permanent(err)
	}
	c, raw, err := launch(ctx, k.Dir, pc, wire.KindSource, p.Logger, k.Timeouts.withDefaults())
	if err != nil {
		return nil, err
	}
	if err := c.checkConfig(pc, configAt(p.Name, "source")); err != nil {
		c.client.Kill()
		return nil, err
	}
	cl := raw.(pb.SourceClient)
	defer func() { _ = c.stop(ctx, cl.Close) }()
	var resp *pb.DiscoverResponse
	err = c.unary(ctx, "discover", c.t.Call, func(ctx context.Context) (err error) {
		resp, err = cl.Discover(ctx, &pb.ConfigRequest{Connector: p.Name, ConfigJson: cfg})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]*record.Schema, 0, len(resp.GetSchemas()))
	for _, ps := range resp.GetSchemas() {
		s, err := wire.SchemaFromPB(ps)
		if err != nil {
			return nil, fmt.Errorf("plugin %s: discover: malformed schema: %w", c.name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Source is a running source plugin; it implements connector.Source.
type Source struct {
	c         *conn
	rpc       pb.SourceClient
	cfg       []byte
	connector string
	sync      bool
	status    connector.Status
}

var _ connector.Source = (*Source)(nil)

// Read opens the plugin at start and streams its batches into emit until ctx ends,
// the plugin ends the stream (a sync or finite source: nil), or something fails.
func (s *Source) Read(ctx context.Context, start record.Position, emit connector.EmitFunc) error {
	err := s.c.unary(ctx, "open", s.c.t.Call, func(cctx context.Context) error {
		_, err := s.rpc.Open(cctx, &pb.SourceOpenRequest{Connector: s.connector, ConfigJson: s.cfg, Position: start, Sync: s.sync})
		return err
	})
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hb := s.c.t.Idle / 5
	stream, err := s.rpc.Read(sctx, &pb.ReadRequest{HeartbeatMillis: uint32(hb.Milliseconds())})
	if err != nil {
		return s.c.wrap(ctx, "read", err)
	}
	s.status.SetPhase("streaming")
	dec := wire.NewDecoder()
	for {
		stop := s.c.watch("read", s.c.t.Idle)
		b, err := stream.Recv()
		stop()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return s.c.wrap(ctx, "read", err)
		}
		recs, err := dec.Decode(b)
		if err != nil {
			// The stream cannot be trusted past a bad batch; the supervisor restarts
			// the connector (and so the plugin) from the committed offset.
			return fmt.Errorf("plugin %s: read: malformed batch: %w", s.c.name, err)
		}
		if len(recs) == 0 {
			continue // heartbeat
		}
		if err := emit(ctx, recs); err != nil {
			return err
		}
		s.status.SourcePosition(recs[len(recs)-1].Pos.String())
	}
}

// Ack tells the plugin what is committed.
func (s *Source) Ack(ctx context.Context, pos record.Position) error {
	return s.c.unary(ctx, "ack", s.c.t.Call, func(cctx context.Context) error {
		_, err := s.rpc.Ack(cctx, &pb.AckRequest{Position: pos})
		return err
	})
}

// Close asks the plugin to close, then ends its process.
func (s *Source) Close(ctx context.Context) error { return s.c.stop(ctx, s.rpc.Close) }
