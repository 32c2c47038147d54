package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/builtin"
	"github.com/connectd/connectd/offsets"
)

// app is what every config-reading command starts from.
type app struct {
	cfg   *config.Config
	log   *slog.Logger
	reg   *connector.Registry
	store offsets.Store
}

// load reads the config and builds the logger and registry. Config problems are usage
// errors (exit status 2); the config package already names file, line and key.
func (g *globalFlags) load(ctx context.Context, withStore bool) (*app, error) {
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	if g.configPath == "" {
		return nil, usageErr(errors.New("no config file: pass -c FILE"))
	}
	// The kinds' config specs do not depend on plugins.dir, which the file sets: the
	// registry is built again with it once the file is read.
	cfg, err := config.Load(g.configPath, builtin.Registry(""))
	if err != nil {
		return nil, usageErr(err)
	}
	a := &app{cfg: cfg, log: log, reg: builtin.Registry(cfg.Plugins.Dir)}
	if withStore {
		// The URL's form was checked with the config: what fails here is reaching
		// the store (a directory, a bucket, a database), not a usage error.
		a.store, err = offsets.Open(ctx, cfg.Offsets)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Path, err)
		}
	}
	return a, nil
}

// close releases the offsets store's connections.
func (a *app) close() {
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.log.Warn("closing the offsets store", "err", err)
		}
	}
}

// selected returns the connectors named on the command line, or all in file order.
func (a *app) selected(names []string) ([]string, error) {
	if len(names) == 0 {
		return a.cfg.Order, nil
	}
	for _, n := range names {
		if _, ok := a.cfg.Connectors[n]; !ok {
			return nil, usageErr(fmt.Errorf("%s: no connector named %q (have %v)", a.cfg.Path, n, a.cfg.Order))
		}
	}
	return names, nil
}

// kinds resolves the source and destination kinds of a connector.
func (a *app) kinds(name string) (connector.SourceKind, connector.DestinationKind, error) {
	c := a.cfg.Connectors[name]
	sk, err := a.reg.Source(c.Source.Type)
	if err != nil {
		return nil, nil, usageErr(fmt.Errorf("%s: connectors.%s.source.type: %w", a.cfg.Path, name, err))
	}
	dk, err := a.reg.Destination(c.Destination.Type)
	if err != nil {
		return nil, nil, usageErr(fmt.Errorf("%s: connectors.%s.destination.type: %w", a.cfg.Path, name, err))
	}
	return sk, dk, nil
}

func (a *app) sourceParams(name string, mode connector.Mode, st connector.Status) connector.SourceParams {
	if st == nil {
		st = connector.NopStatus{}
	}
	p := connector.SourceParams{
		Name:   name,
		Config: a.cfg.Connectors[name].Source,
		Mode:   mode,
		Logger: a.log.With("connector", name),
		Status: st,
	}
	// Sources keep state beside their offsets (snapshot progress, the mysql schema
	// history); check and discover open no store, and need none.
	if a.store != nil {
		p.State = a.store.State(name)
	}
	return p
}

func (a *app) destinationParams(name string) connector.DestinationParams {
	return connector.DestinationParams{
		Name:   name,
		Config: a.cfg.Connectors[name].Destination,
		Logger: a.log.With("connector", name),
	}
}

// goVersion reports the Go version the binary was built with.
func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.GoVersion != "" {
		return bi.GoVersion
	}
	return runtime.Version()
}

// openPair opens a connector's source and destination; on failure nothing stays open.
func (a *app) openPair(ctx context.Context, name string, mode connector.Mode, st connector.Status) (connector.Source, connector.Destination, error) {
	sk, dk, err := a.kinds(name)
	if err != nil {
		return nil, nil, err
	}
	dst, err := dk.Open(ctx, a.destinationParams(name))
	if err != nil {
		return nil, nil, fmt.Errorf("open destination: %w", err)
	}
	src, err := sk.Open(ctx, a.sourceParams(name, mode, st))
	if err != nil {
		_ = dst.Close(ctx)
		return nil, nil, fmt.Errorf("open source: %w", err)
	}
	return src, dst, nil
}
