// Package sdk is what a connectd plugin is written with. A plugin is a separate
// executable that connectd starts and speaks to over gRPC (hashicorp/go-plugin); the
// author implements Source or Destination and calls ServeSource or ServeDestination
// from main. The SDK decodes the plugin's `config:` section into the author's config
// type, converts records to and from the wire, splits and coalesces batches, sends
// heartbeats, keeps positions in order (records at or before the committed position
// are dropped, acks never run ahead of what was sent) and turns panics into errors.
//
// A plugin writes nothing to stdout; it logs through Env.Logger, whose records
// connectd shows in its own log under the plugin's name.
package sdk

import (
	"context"
	"errors"
	"log/slog"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Version names this SDK in a plugin's Spec.
const Version = "connectd-go-sdk/1"

// Info describes a plugin: what connectd logs when it starts one.
type Info struct {
	Name    string // e.g. "jsonl-source"
	Version string // the plugin's own version
	// ConfigSchema is the JSON Schema (draft 2020-12) connectd validates the
	// connector's `config:` against before the plugin sees it. Left empty, the SDK
	// derives it from the config type's tags (see ConfigSchema); set it only for a
	// config type without tags.
	ConfigSchema string
}

// Env is what a connector instance runs in.
type Env struct {
	Connector string // the connector's name in connectd's config
	// Sync is true under `connectd sync`: Read should return io.EOF once it has
	// delivered everything that existed when Open was called.
	Sync   bool
	Logger *slog.Logger // forwarded into connectd's log
}

// Source is implemented by a source plugin. C is its config type: the `config:`
// section of the connector is decoded into it (unknown keys are errors), by its
// yaml/doc/default tags when it has them, as connectd's own connectors declare
// theirs, and otherwise as plain JSON.
//
// The SDK calls Open once, then Read repeatedly from one goroutine while Ack may be
// called from another, then Close once.
type Source[C any] interface {
	// Open prepares to read every record after pos (nil: from the beginning).
	Open(ctx context.Context, cfg C, pos record.Position, env Env) error
	// Read returns the next records in source order, each with a position greater
	// than the one before. It blocks until it has some or ctx ends; it may return an
	// empty slice after waiting a while with nothing to read. It returns io.EOF when
	// there is nothing more to read (a finite source, or in sync mode once caught up).
	// The SDK owns the slice after the call.
	Read(ctx context.Context) ([]record.Record, error)
	// Ack says every record up to and including pos is durably stored by connectd;
	// only now may the source forget it (delete a file, confirm to its server).
	Ack(ctx context.Context, pos record.Position) error
	// Close releases resources.
	Close(ctx context.Context) error
}

// Destination is implemented by a destination plugin.
//
// The SDK calls Open once, then Write and Flush in the order connectd sends them,
// then Close once.
type Destination[C any] interface {
	Open(ctx context.Context, cfg C, env Env) error
	// Write accepts records in source order; they need not be durable yet.
	Write(ctx context.Context, recs []record.Record) error
	// Flush returns only once everything written is durable. connectd commits the
	// offset after it; after a crash it replays from that offset, so a replayed
	// record must overwrite, not duplicate, what a failed attempt left behind.
	Flush(ctx context.Context) error
	// Close releases resources without flushing.
	Close(ctx context.Context) error
}

// Checker is optionally implemented by a Source or Destination for `connectd check`.
type Checker[C any] interface {
	Check(ctx context.Context, cfg C) []connector.CheckResult
}

// Discoverer is optionally implemented by a Source for `connectd discover`.
type Discoverer[C any] interface {
	Discover(ctx context.Context, cfg C) ([]*record.Schema, error)
}

// Permanent marks err as one that no restart can fix (a bad config value, a line
// that can never be parsed): connectd fails the connector instead of restarting it
// from its committed offset. Every other error is retried with backoff.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err or an error it wraps was marked by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
