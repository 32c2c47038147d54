// Command rawsource is a test source plugin that speaks the protocol by hand, to do
// what the SDK would not let a plugin do: announce another protocol version (build
// with -ldflags "-X main.protocolVersion=99"; default: the current one) or send a
// malformed batch.
package main

import (
	"context"
	"strconv"

	plugin "github.com/hashicorp/go-plugin"

	"github.com/connectd/connectd/plugins/internal/wire"
	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
)

// protocolVersion is set by -ldflags -X (which needs a plain string variable).
var protocolVersion string

func version() int {
	if v, err := strconv.Atoi(protocolVersion); err == nil {
		return v
	}
	return wire.ProtocolVersion
}

type server struct {
	pb.UnimplementedSourceServer
}

func (server) Spec(context.Context, *pb.SpecRequest) (*pb.SpecResponse, error) {
	v := version()
	return &pb.SpecResponse{Name: "rawsource", Kind: wire.KindSource, ProtocolVersion: uint32(v)}, nil
}

func (server) Open(context.Context, *pb.SourceOpenRequest) (*pb.OpenResponse, error) {
	return &pb.OpenResponse{}, nil
}

// Read sends a record that refers to a schema it never sent.
func (server) Read(_ *pb.ReadRequest, stream pb.Source_ReadServer) error {
	rec := []byte{'c', 7, 0, 1, 1, 0, 0, 0} // op c, schema 7, no images, pos 01
	return stream.Send(&pb.Batch{Count: 1, Records: rec})
}

func (server) Close(context.Context, *pb.CloseRequest) (*pb.CloseResponse, error) {
	return &pb.CloseResponse{}, nil
}

func main() {
	v := version()
	hs := wire.Handshake
	hs.ProtocolVersion = uint(v)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{v: {wire.KindSource: &wire.SourcePlugin{Impl: server{}}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
