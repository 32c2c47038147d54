// Package wire is what the host (plugins/host) and the SDK (plugins/sdk) share: the
// go-plugin handshake, the plugin types that bind the generated gRPC services, and
// the conversion between record.Record and its protobuf form.
package wire

import (
	"context"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
)

// ProtocolVersion is the version of plugins/proto/connectd/v1 this code speaks. It
// is negotiated in the go-plugin handshake; bump it on any incompatible change.
const ProtocolVersion = 2

// The names under which the two plugin kinds are dispensed.
const (
	KindSource      = "source"
	KindDestination = "destination"
)

// Handshake is the go-plugin handshake. The cookie only keeps a plugin from being run
// by hand by mistake; it is not a security measure (the SHA-256 pin is).
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "CONNECTD_PLUGIN",
	MagicCookieValue: "b6f7a2c4-connectd-plugin",
}

// MaxMessageBytes bounds one gRPC message (a batch) in either direction. The SDK
// splits batches well below it.
const MaxMessageBytes = 256 << 20

// Flow control and socket buffers of the plugin connection. gRPC's defaults (a
// 64 KiB window grown by estimation, 32 KiB buffers) are made for networks; over a
// local socket a window of several batches lets the sender keep encoding while the
// receiver decodes, instead of waiting for window updates.
const (
	windowBytes = 16 << 20
	bufferBytes = 1 << 20
)

// DialOptions are the host's options for the plugin connection.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(windowBytes), grpc.WithInitialConnWindowSize(windowBytes),
		grpc.WithReadBufferSize(bufferBytes), grpc.WithWriteBufferSize(bufferBytes)}
}

// ServerOptions are the plugin's options for the same connection.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.InitialWindowSize(windowBytes), grpc.InitialConnWindowSize(windowBytes),
		grpc.ReadBufferSize(bufferBytes), grpc.WriteBufferSize(bufferBytes)}
}

// SourcePlugin binds the Source service to go-plugin. The SDK sets Impl; the host
// uses the zero value and gets a pb.SourceClient from Dispense.
type SourcePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl pb.SourceServer
}

// GRPCServer registers the source service.
func (p *SourcePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterSourceServer(s, p.Impl)
	return nil
}

// GRPCClient returns a pb.SourceClient.
func (p *SourcePlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewSourceClient(c), nil
}

// DestinationPlugin binds the Destination service to go-plugin.
type DestinationPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl pb.DestinationServer
}

// GRPCServer registers the destination service.
func (p *DestinationPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterDestinationServer(s, p.Impl)
	return nil
}

// GRPCClient returns a pb.DestinationClient.
func (p *DestinationPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewDestinationClient(c), nil
}
