//go:build !linux

package postgres

import "net"

// Elsewhere the replication connection stays in the network poller
// (sockconn_linux.go says why Linux takes it out).
func detach(_ string, c net.Conn) net.Conn { return c }

func coalesce(net.Conn, bool) {}
