package sdk

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/connectd/connectd/plugins/internal/wire"
	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
	"github.com/connectd/connectd/record"
)

// Batching bounds: how many records and bytes one message carries (whichever is
// reached first; large messages amortise the per-message cost of gRPC), and how
// many results of the author's Read may wait while the previous message is sent.
const (
	maxBatchRecords  = 8192
	maxBatchBytes    = 1 << 20
	readAhead        = 8
	defaultHeartbeat = 5 * time.Second
)

type sourceServer[C any] struct {
	pb.UnimplementedSourceServer
	info Info
	impl Source[C]
	log  *slog.Logger

	mu      sync.Mutex
	opened  bool
	reading bool
	start   record.Position // the committed position Open was given
	sent    record.Position // the last position sent to the host
}

func newSourceServer[C any](info Info, impl Source[C], log *slog.Logger) *sourceServer[C] {
	return &sourceServer[C]{info: withSchema[C](info), impl: impl, log: log}
}

func (s *sourceServer[C]) Spec(context.Context, *pb.SpecRequest) (*pb.SpecResponse, error) {
	return spec(s.info, wire.KindSource), nil
}

func spec(info Info, kind string) *pb.SpecResponse {
	return &pb.SpecResponse{Name: info.Name, Version: info.Version, Kind: kind,
		ProtocolVersion: wire.ProtocolVersion, Sdk: Version, ConfigSchema: info.ConfigSchema}
}

func (s *sourceServer[C]) Check(ctx context.Context, req *pb.ConfigRequest) (*pb.CheckResponse, error) {
	return check[C](ctx, s.info, s.impl, req.GetConfigJson(), s.log)
}

// check decodes the config and runs the author's Checker, if there is one.
func check[C any](ctx context.Context, info Info, impl any, raw []byte, log *slog.Logger) (*pb.CheckResponse, error) {
	cfg, err := decodeConfig[C](raw)
	if err != nil {
		return &pb.CheckResponse{Results: []*pb.CheckResult{{Name: info.Name + ": config", Detail: err.Error(),
			Fix: "correct the plugin's config: section"}}}, nil
	}
	out := &pb.CheckResponse{Results: []*pb.CheckResult{{Name: info.Name + ": config", Ok: true, Detail: "decoded"}}}
	c, ok := impl.(Checker[C])
	if !ok {
		return out, nil
	}
	err = call(log, "Check", func() error {
		for _, r := range c.Check(ctx, cfg) {
			out.Results = append(out.Results, &pb.CheckResult{Name: r.Name, Ok: r.OK, Detail: r.Detail, Fix: r.Fix})
		}
		return nil
	})
	return out, toStatus("check", err)
}

func (s *sourceServer[C]) Discover(ctx context.Context, req *pb.ConfigRequest) (*pb.DiscoverResponse, error) {
	d, ok := s.impl.(Discoverer[C])
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "plugin %s does not implement discover", s.info.Name)
	}
	cfg, err := decodeConfig[C](req.GetConfigJson())
	if err != nil {
		return nil, toStatus("discover", err)
	}
	var schemas []*record.Schema
	if err := call(s.log, "Discover", func() (err error) { schemas, err = d.Discover(ctx, cfg); return err }); err != nil {
		return nil, toStatus("discover", err)
	}
	out := &pb.DiscoverResponse{}
	for i, sc := range schemas {
		ps, err := wire.SchemaToPB(sc)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "discover: %v", err)
		}
		ps.Id = uint32(i + 1)
		out.Schemas = append(out.Schemas, ps)
	}
	return out, nil
}

func (s *sourceServer[C]) Open(ctx context.Context, req *pb.SourceOpenRequest) (*pb.OpenResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opened {
		return nil, status.Error(codes.FailedPrecondition, "open: already open")
	}
	cfg, err := decodeConfig[C](req.GetConfigJson())
	if err != nil {
		return nil, toStatus("open", err)
	}
	pos := record.Position(req.GetPosition())
	if len(pos) == 0 {
		pos = nil
	}
	env := Env{Connector: req.GetConnector(), Sync: req.GetSync(), Logger: s.log}
	if err := call(s.log, "Open", func() error { return s.impl.Open(ctx, cfg, pos, env) }); err != nil {
		return nil, toStatus("open", err)
	}
	s.opened, s.start, s.sent = true, pos, pos
	return &pb.OpenResponse{}, nil
}

type readResult struct {
	recs []record.Record
	err  error
}

// Read streams what the author's Read returns. The author's Read runs in its own
// goroutine, so that heartbeats go out while it waits for data.
func (s *sourceServer[C]) Read(req *pb.ReadRequest, stream pb.Source_ReadServer) error {
	s.mu.Lock()
	if !s.opened || s.reading {
		s.mu.Unlock()
		return status.Error(codes.FailedPrecondition, "read: the source must be opened, and read once")
	}
	s.reading = true
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	results := make(chan readResult, readAhead)
	go func() {
		for {
			var r readResult
			r.err = call(s.log, "Read", func() (err error) { r.recs, err = s.impl.Read(ctx); return err })
			select {
			case results <- r:
			case <-ctx.Done():
				return
			}
			if r.err != nil {
				return
			}
		}
	}()

	hb := time.Duration(req.GetHeartbeatMillis()) * time.Millisecond
	if hb <= 0 {
		hb = defaultHeartbeat
	}
	heartbeat := time.NewTimer(hb)
	defer heartbeat.Stop()
	enc := wire.NewEncoder()
	var pending []record.Record
	for {
		select {
		case r := <-results:
			// Coalesce what is already waiting, so that a source returning one record
			// per Read still crosses in large messages.
			batch := r.recs
			for r.err == nil && len(batch) < maxBatchRecords {
				select {
				case r = <-results:
					if len(pending) == 0 { // copy only once there is a second result
						pending = append(pending[:0], batch...)
					}
					pending = append(pending, r.recs...)
					batch = pending
					continue
				default:
				}
				break
			}
			sent, err := s.send(stream, enc, batch)
			pending = pending[:0]
			if err != nil {
				return err
			}
			if errors.Is(r.err, io.EOF) {
				return nil
			}
			if r.err != nil {
				return toStatus("read", r.err)
			}
			if sent {
				heartbeat.Reset(hb)
			}
		case <-heartbeat.C:
			if err := stream.Send(enc.Batch()); err != nil { // empty: a heartbeat
				return err
			}
			heartbeat.Reset(hb)
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// send drops records at or before the committed position (a source may simply
// restart at the beginning of its unit of work), checks the order of the rest, and
// sends them in messages of at most maxBatchRecords and about maxBatchBytes.
func (s *sourceServer[C]) send(stream pb.Source_ReadServer, enc *wire.Encoder, recs []record.Record) (sent bool, err error) {
	s.mu.Lock()
	start, last := s.start, s.sent
	s.mu.Unlock()
	keep := recs[:0]
	for i := range recs {
		p := recs[i].Pos
		if len(p) == 0 {
			return false, status.Errorf(codes.Internal, "read: record of %s without a position", tableOf(&recs[i]))
		}
		if start != nil && p.Compare(start) <= 0 {
			continue
		}
		if last != nil && p.Compare(last) <= 0 {
			return false, status.Errorf(codes.Internal, "read: position %s after %s: positions must strictly increase", p, last)
		}
		last = p
		keep = append(keep, recs[i])
	}
	for i := range keep {
		if _, err := enc.Append(keep[i : i+1]); err != nil {
			return sent, status.Errorf(codes.Internal, "read: invalid record: %v", err)
		}
		if n, size := enc.Pending(); n < maxBatchRecords && size < maxBatchBytes && i < len(keep)-1 {
			continue
		}
		if err := stream.Send(enc.Batch()); err != nil {
			return sent, err
		}
		sent = true
		s.mu.Lock()
		s.sent = keep[i].Pos
		s.mu.Unlock()
	}
	return sent, nil
}

func tableOf(r *record.Record) string {
	if r.Schema == nil {
		return "(no schema)"
	}
	return r.Schema.QualifiedName()
}

func (s *sourceServer[C]) Ack(ctx context.Context, req *pb.AckRequest) (*pb.AckResponse, error) {
	pos := record.Position(req.GetPosition())
	s.mu.Lock()
	sent := s.sent
	s.mu.Unlock()
	if pos.Compare(sent) > 0 {
		return nil, status.Errorf(codes.InvalidArgument, "ack: position %s is beyond the last one sent (%s)", pos, sent)
	}
	if err := call(s.log, "Ack", func() error { return s.impl.Ack(ctx, pos) }); err != nil {
		return nil, toStatus("ack", err)
	}
	return &pb.AckResponse{}, nil
}

func (s *sourceServer[C]) Close(ctx context.Context, _ *pb.CloseRequest) (*pb.CloseResponse, error) {
	s.mu.Lock()
	opened := s.opened
	s.mu.Unlock()
	if !opened {
		return &pb.CloseResponse{}, nil
	}
	if err := call(s.log, "Close", func() error { return s.impl.Close(ctx) }); err != nil {
		return nil, toStatus("close", err)
	}
	return &pb.CloseResponse{}, nil
}
