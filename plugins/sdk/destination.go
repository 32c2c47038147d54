package sdk

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/connectd/connectd/plugins/internal/wire"
	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
	"github.com/connectd/connectd/record"
)

type destinationServer[C any] struct {
	pb.UnimplementedDestinationServer
	info Info
	impl Destination[C]
	log  *slog.Logger

	mu      sync.Mutex
	opened  bool
	writing bool
}

func newDestinationServer[C any](info Info, impl Destination[C], log *slog.Logger) *destinationServer[C] {
	return &destinationServer[C]{info: withSchema[C](info), impl: impl, log: log}
}

func (d *destinationServer[C]) Spec(context.Context, *pb.SpecRequest) (*pb.SpecResponse, error) {
	return spec(d.info, wire.KindDestination), nil
}

func (d *destinationServer[C]) Check(ctx context.Context, req *pb.ConfigRequest) (*pb.CheckResponse, error) {
	return check[C](ctx, d.info, d.impl, req.GetConfigJson(), d.log)
}

func (d *destinationServer[C]) Open(ctx context.Context, req *pb.DestinationOpenRequest) (*pb.OpenResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.opened {
		return nil, status.Error(codes.FailedPrecondition, "open: already open")
	}
	cfg, err := decodeConfig[C](req.GetConfigJson())
	if err != nil {
		return nil, toStatus("open", err)
	}
	env := Env{Connector: req.GetConnector(), Logger: d.log}
	if err := call(d.log, "Open", func() error { return d.impl.Open(ctx, cfg, env) }); err != nil {
		return nil, toStatus("open", err)
	}
	d.opened = true
	return &pb.OpenResponse{}, nil
}

// Write applies batches and flushes in stream order; each flush is answered only
// once the author's Flush has returned, with the last position it covers.
func (d *destinationServer[C]) Write(stream pb.Destination_WriteServer) error {
	d.mu.Lock()
	if !d.opened || d.writing {
		d.mu.Unlock()
		return status.Error(codes.FailedPrecondition, "write: the destination must be opened, and written by one stream")
	}
	d.writing = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.writing = false
		d.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	in := receive(ctx, stream)
	var last record.Position
	var n int64
	for m := range in {
		switch {
		case m.err != nil:
			if errors.Is(m.err, io.EOF) {
				return nil
			}
			return m.err
		case m.flush:
			if err := call(d.log, "Flush", func() error { return d.impl.Flush(ctx) }); err != nil {
				return toStatus("flush", err)
			}
			if err := stream.Send(&pb.WriteResponse{Flushed: &pb.FlushResponse{Position: last, Records: n}}); err != nil {
				return err
			}
			n = 0
		case len(m.recs) > 0:
			recs := m.recs
			for i := range recs {
				if last != nil && recs[i].Pos.Compare(last) <= 0 {
					return status.Errorf(codes.Internal, "write: position %s after %s", recs[i].Pos, last)
				}
				last = recs[i].Pos
			}
			if err := call(d.log, "Write", func() error { return d.impl.Write(ctx, recs) }); err != nil {
				return toStatus("write", err)
			}
			n += int64(len(recs))
		}
	}
	return ctx.Err()
}

// received is one request of the write stream, decoded; err ends the stream (io.EOF:
// connectd closed it).
type received struct {
	recs  []record.Record
	flush bool
	err   error
}

// decodeAhead is how many decoded requests may wait for the author's Write: the next
// batch is received and decoded while Write works on this one.
const decodeAhead = 2

// receive reads and decodes the write stream in a goroutine of its own, until an
// error (which it delivers last) or until ctx ends.
func receive(ctx context.Context, stream pb.Destination_WriteServer) <-chan received {
	out := make(chan received, decodeAhead)
	go func() {
		defer close(out)
		dec := wire.NewDecoder()
		for {
			var r received
			req, err := stream.Recv()
			switch {
			case err != nil:
				r.err = err
			default:
				switch m := req.GetMsg().(type) {
				case *pb.WriteRequest_Batch:
					if r.recs, err = dec.Decode(m.Batch); err != nil {
						r.err = status.Errorf(codes.Internal, "write: malformed batch from connectd: %v", err)
					}
				case *pb.WriteRequest_Flush:
					r.flush = true
				default:
					r.err = status.Errorf(codes.Internal, "write: empty request")
				}
			}
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
			if r.err != nil {
				return
			}
		}
	}()
	return out
}

func (d *destinationServer[C]) Close(ctx context.Context, _ *pb.CloseRequest) (*pb.CloseResponse, error) {
	d.mu.Lock()
	opened := d.opened
	d.mu.Unlock()
	if !opened {
		return &pb.CloseResponse{}, nil
	}
	if err := call(d.log, "Close", func() error { return d.impl.Close(ctx) }); err != nil {
		return nil, toStatus("close", err)
	}
	return &pb.CloseResponse{}, nil
}
