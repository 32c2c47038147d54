// Command discarddest is a test and benchmark destination plugin: it counts what it
// is given and keeps nothing. With hang "flush" its Flush never returns; with
// "write" its Write never returns.
package main

import (
	"context"

	"github.com/connectd/connectd/plugins/sdk"
	"github.com/connectd/connectd/record"
)

// Config is the plugin's config.
type Config struct {
	Hang string `json:"hang"`
}

type destination struct {
	cfg Config
	env sdk.Env
	n   int
}

func (d *destination) Open(ctx context.Context, cfg Config, env sdk.Env) error {
	d.cfg, d.env = cfg, env
	return nil
}

func (d *destination) Write(ctx context.Context, recs []record.Record) error {
	if d.cfg.Hang == "write" {
		select {}
	}
	d.n += len(recs)
	return nil
}

func (d *destination) Flush(ctx context.Context) error {
	if d.cfg.Hang == "flush" {
		select {}
	}
	d.env.Logger.Debug("flushed", "records", d.n)
	return nil
}

func (d *destination) Close(context.Context) error { return nil }

func main() {
	sdk.ServeDestination[Config](sdk.Info{Name: "discarddest", Version: "test"}, &destination{})
}
