package main

import (
	"context"
	"fmt"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/pipeline"
	"github.com/connectd/connectd/status"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run every connector until SIGINT/SIGTERM, then flush, commit and exit",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return g.runConnectors(c.Context(), nil, connector.ModeStream)
		},
	}
	addConfigFlag(c, g)
	return c
}

func newSyncCmd(g *globalFlags) *cobra.Command {
	var names []string
	c := &cobra.Command{
		Use:   "sync -c FILE [--connector NAME]...",
		Short: "Deliver everything committed at the source when the command started, then exit",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return g.runConnectors(c.Context(), names, connector.ModeSync)
		},
	}
	addConfigFlag(c, g)
	c.Flags().StringArrayVar(&names, "connector", nil, "run only this connector (repeatable)")
	return c
}

// runConnectors is `run` and `sync`: the supervisor over the selected connectors, the
// status server, and the signal handling that turns SIGINT/SIGTERM into a clean stop.
func (g *globalFlags) runConnectors(ctx context.Context, names []string, mode connector.Mode) error {
	a, err := g.load(ctx, true)
	if err != nil {
		return err
	}
	defer a.close()
	sel, err := a.selected(names)
	if err != nil {
		return err
	}
	for _, n := range sel {
		if _, _, err := a.kinds(n); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	reg := status.New(a.log)
	srvDone := make(chan error, 1)
	srvCtx, srvStop := context.WithCancel(context.Background())
	defer srvStop()
	if addr := a.cfg.Server.Listen; addr != "" {
		go func() { srvDone <- status.Serve(srvCtx, addr, reg.Handler(), a.log) }()
	} else {
		srvDone <- nil
	}
	progressDone := make(chan struct{})
	progressCtx, progressStop := context.WithCancel(ctx)
	go func() {
		defer close(progressDone)
		showProgress(progressCtx, isTerminal(g.stderr), g.stderr, g.logs, reg, a.log)
	}()
	defer func() { progressStop(); <-progressDone }()

	holder := offsets.ThisProcess(version, a.cfg.Path)
	specs := make([]pipeline.Spec, 0, len(sel))
	for _, n := range sel {
		specs = append(specs, a.pipelineSpec(n, holder, mode, reg.Observer(n)))
	}
	a.log.Info("connectd starting", "version", version, "connectors", len(specs), "mode", modeName(mode))
	var verifiers sync.WaitGroup
	verifyCtx, verifyStop := context.WithCancel(ctx)
	if mode == connector.ModeStream {
		for _, n := range sel {
			if vc := a.cfg.Connectors[n].Verify; vc.Every > 0 {
				verifiers.Go(func() { a.backgroundVerify(verifyCtx, n, vc, reg.Observer(n)) })
			}
		}
	}
	runErr := pipeline.NewSupervisor(a.log).Run(ctx, specs, mode == connector.ModeSync)
	// A background verify reads the source and the lake only: it ends with the
	// pipelines, before the offsets store it reads is closed.
	verifyStop()
	verifiers.Wait()
	srvStop()
	if err := <-srvDone; err != nil && runErr == nil {
		runErr = fmt.Errorf("status server: %w", err)
	}
	if runErr != nil {
		return runErr
	}
	a.log.Info("connectd stopped cleanly")
	return nil
}

// pipelineSpec is how the supervisor runs connector n: under its lease, opened in
// mode, reporting to obs.
func (a *app) pipelineSpec(n string, holder offsets.Holder, mode connector.Mode, obs pipeline.Observer) pipeline.Spec {
	return pipeline.Spec{
		Name: n,
		Acquire: func(ctx context.Context) (pipeline.Lease, error) {
			return a.acquire(ctx, n, holder, mode, obs)
		},
		Open: func(ctx context.Context) (connector.Source, connector.Destination, error) {
			return a.openPair(ctx, n, mode, obs)
		},
		Flush:    a.cfg.Connectors[n].Destination.Flush,
		Logger:   a.log.With("connector", n),
		Observer: obs,
	}
}

func modeName(m connector.Mode) string {
	if m == connector.ModeSync {
		return "sync"
	}
	return "run"
}
