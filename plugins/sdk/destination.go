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
	return &destinationServer[C]{info: info, impl: impl, log: log}
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

	ctx := stream.Context()
	dec := wire.NewDecoder()
	var last record.Position
	var n int64
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch m := req.GetMsg().(type) {
		case *pb.WriteRequest_Batch:
			recs, err := dec.Decode(m.Batch)
			if err != nil {
				return status.Errorf(codes.Internal, "write: malformed batch from connectd: %v", err)
			}
			if len(recs) == 0 {
				continue
			}
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
		case *pb.WriteRequest_Flush:
			if err := call(d.log, "Flush", func() error { return d.impl.Flush(ctx) }); err != nil {
				return toStatus("flush", err)
			}
			if err := stream.Send(&pb.WriteResponse{Flushed: &pb.FlushResponse{Position: last, Records: n}}); err != nil {
				return err
			}
			n = 0
		default:
			return status.Errorf(codes.Internal, "write: empty request")
		}
	}
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
