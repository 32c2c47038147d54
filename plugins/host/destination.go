package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/plugins/internal/wire"
	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
	"github.com/connectd/connectd/record"
)

// DestinationKind is `type: plugin` for destinations; it implements
// connector.DestinationKind.
type DestinationKind struct {
	Dir      string // config plugins.dir
	Timeouts Timeouts
}

var _ connector.DestinationKind = DestinationKind{}

// Open starts the plugin process and opens the plugin with its config.
func (k DestinationKind) Open(ctx context.Context, p connector.DestinationParams) (connector.Destination, error) {
	pc, _ := p.Config.Config.(*Config)
	if pc == nil {
		return nil, connector.Permanent(errors.New("plugin destination: no plugin settings"))
	}
	cfg, err := configJSON(pc)
	if err != nil {
		return nil, connector.Permanent(err)
	}
	c, raw, err := launch(ctx, k.Dir, pc, wire.KindDestination, p.Logger, k.Timeouts.withDefaults())
	if err != nil {
		return nil, err
	}
	if err := c.checkConfig(pc, configAt(p.Name, "destination")); err != nil {
		c.client.Kill()
		return nil, err
	}
	rpc := raw.(pb.DestinationClient)
	err = c.unary(ctx, "open", c.t.Call, func(cctx context.Context) error {
		_, err := rpc.Open(cctx, &pb.DestinationOpenRequest{Connector: p.Name, ConfigJson: cfg})
		return err
	})
	if err != nil {
		_ = c.stop(ctx, rpc.Close)
		return nil, err
	}
	// The Write stream lives as long as the destination, not as one call's context.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &Destination{c: c, rpc: rpc, streamCtx: sctx, cancel: cancel}, nil
}

// Check starts the plugin and runs its checks.
func (k DestinationKind) Check(ctx context.Context, p connector.DestinationParams) []connector.CheckResult {
	pc, _ := p.Config.Config.(*Config)
	c, raw, res := checkStart(ctx, k.Dir, pc, wire.KindDestination, p.Logger, k.Timeouts)
	if c == nil {
		return res
	}
	cl := raw.(pb.DestinationClient)
	defer func() { _ = c.stop(ctx, cl.Close) }()
	cr, ok := c.configResult(pc, configAt(p.Name, "destination"))
	if res = append(res, cr); !ok {
		return res
	}
	return append(res, runCheck(ctx, c, pc, p.Name, cl.Check)...)
}

// Destination is a running destination plugin; it implements connector.Destination.
type Destination struct {
	c         *conn
	rpc       pb.DestinationClient
	streamCtx context.Context
	cancel    context.CancelFunc
	stream    pb.Destination_WriteClient
	enc       *wire.Encoder
	failed    error // the stream broke; every later call fails with this

	rows, bytes int64
	last        record.Position // last position written
}

var _ connector.Destination = (*Destination)(nil)

// Bounds of one message to the plugin: records written by the pipeline are packed
// until one is reached (or a flush comes), so that small writes cross in messages
// large enough to amortise gRPC's per-message cost.
const (
	sendRecords = 8192
	sendBytes   = 1 << 20
)

// Write encodes recs and sends them once enough are pending. It does not wait for
// the plugin to apply them: the plugin's errors surface at a later Write or at Flush.
func (d *Destination) Write(ctx context.Context, recs []record.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if d.failed != nil {
		return d.failed
	}
	if d.stream == nil {
		s, err := d.rpc.Write(d.streamCtx)
		if err != nil {
			return d.fail(ctx, "write", err)
		}
		d.stream, d.enc = s, wire.NewEncoder()
	}
	size, err := d.enc.Append(recs)
	if err != nil {
		// The runtime gave us a record the protocol cannot carry: a bug upstream.
		return connector.Permanent(fmt.Errorf("plugin %s: write: %w", d.c.name, err))
	}
	d.rows += int64(len(recs))
	d.bytes += size
	d.last = recs[len(recs)-1].Pos
	if n, b := d.enc.Pending(); n >= sendRecords || b >= sendBytes {
		return d.send(ctx)
	}
	return nil
}

// send sends the pending records.
func (d *Destination) send(ctx context.Context) error {
	if n, _ := d.enc.Pending(); n == 0 {
		return nil
	}
	stop := d.c.watch("write", d.c.t.Call)
	err := d.stream.Send(&pb.WriteRequest{Msg: &pb.WriteRequest_Batch{Batch: d.enc.Batch()}})
	stop()
	if err != nil {
		return d.fail(ctx, "write", d.streamErr(err))
	}
	return nil
}

// streamErr replaces the io.EOF that Send returns when the plugin ended the stream
// by the status the plugin ended it with.
func (d *Destination) streamErr(err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	stop := d.c.watch("write", d.c.t.Call)
	defer stop()
	for {
		_, rerr := d.stream.Recv()
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return errors.New("the plugin ended the write stream")
			}
			return rerr
		}
	}
}

func (d *Destination) fail(ctx context.Context, op string, err error) error {
	d.failed = d.c.wrap(ctx, op, err)
	d.cancel()
	return d.failed
}

// Buffered reports what was written since the last flush.
func (d *Destination) Buffered() (rows, bytes int64) { return d.rows, d.bytes }

// Flush asks the plugin to make everything durable and waits for its answer, which
// must cover exactly the last position written.
func (d *Destination) Flush(ctx context.Context) error {
	if d.failed != nil {
		return d.failed
	}
	if d.stream == nil {
		return nil // nothing written since the destination was opened
	}
	if err := d.send(ctx); err != nil {
		return err
	}
	stop := d.c.watch("flush", d.c.t.Flush)
	defer stop()
	if err := d.stream.Send(&pb.WriteRequest{Msg: &pb.WriteRequest_Flush{Flush: &pb.FlushRequest{}}}); err != nil {
		return d.fail(ctx, "flush", d.streamErr(err))
	}
	resp, err := d.stream.Recv()
	if errors.Is(err, io.EOF) {
		err = errors.New("the plugin ended the write stream instead of answering the flush")
	}
	if err != nil {
		return d.fail(ctx, "flush", err)
	}
	f := resp.GetFlushed()
	if f == nil || !bytes.Equal(f.GetPosition(), d.last) || f.GetRecords() != d.rows {
		d.failed = fmt.Errorf("plugin %s: flush: the plugin reports %d records durable up to %s, but %d were written up to %s",
			d.c.name, f.GetRecords(), record.Position(f.GetPosition()), d.rows, d.last)
		d.cancel()
		return d.failed
	}
	d.rows, d.bytes = 0, 0
	return nil
}

// Close ends the write stream, asks the plugin to close, and ends its process.
func (d *Destination) Close(ctx context.Context) error {
	if d.stream != nil && d.failed == nil {
		_ = d.stream.CloseSend()
	}
	d.cancel()
	return d.c.stop(ctx, d.rpc.Close)
}
