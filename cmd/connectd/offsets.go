package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/pipeline"
	"github.com/connectd/connectd/record"
)

func newOffsetsCmd(g *globalFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "offsets list|show|reset",
		Short: "Inspect or reset the committed offsets of connectors",
	}
	list := &cobra.Command{
		Use:   "list -c FILE",
		Short: "List every connector with its committed position",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := g.load(c.Context(), true)
			if err != nil {
				return err
			}
			defer a.close()
			stored, err := a.store.List(c.Context())
			if err != nil {
				return fmt.Errorf("offsets list: %w", err)
			}
			seen := map[string]bool{}
			for _, n := range a.cfg.Order {
				seen[n] = true
				pos, err := a.store.Load(c.Context(), n)
				if err != nil {
					return fmt.Errorf("offsets list %s: %w", n, err)
				}
				fmt.Fprintf(g.stdout, "%s\t%s\n", n, a.describe(n, pos))
			}
			for _, n := range stored {
				if !seen[n] {
					fmt.Fprintf(g.stdout, "%s\t(not in the config) %s\n", n, "stored")
				}
			}
			return nil
		},
	}
	show := &cobra.Command{
		Use:   "show -c FILE NAME",
		Short: "Show one connector's committed position",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, err := g.load(c.Context(), true)
			if err != nil {
				return err
			}
			defer a.close()
			pos, err := a.store.Load(c.Context(), args[0])
			if err != nil {
				return fmt.Errorf("offsets show %s: %w", args[0], err)
			}
			if pos == nil {
				fmt.Fprintf(g.stdout, "%s: no committed position (the next run starts from the beginning)\n", args[0])
				return nil
			}
			fmt.Fprintf(g.stdout, "connector: %s\nposition:  %s\nmeaning:   %s\n", args[0], pos, a.describe(args[0], pos))
			return nil
		},
	}
	reset := &cobra.Command{
		Use:   "reset -c FILE NAME",
		Short: "Start one connector again from scratch (snapshot included) in a new epoch, whose positions sort after everything already delivered",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, err := g.load(c.Context(), true)
			if err != nil {
				return err
			}
			defer a.close()
			// A reset under a running connector would be undone by its next commit:
			// it takes the connector's lease like a run does.
			lease, err := a.store.Acquire(c.Context(), args[0], offsets.ThisProcess(version, "connectd offsets reset"))
			if offsets.IsHeld(err) {
				return fmt.Errorf("offsets reset %s: %w; stop that process first, then reset", args[0], err)
			}
			if err != nil {
				return fmt.Errorf("offsets reset %s: %w", args[0], err)
			}
			defer func() {
				if err := lease.Release(context.WithoutCancel(c.Context())); err != nil {
					a.log.Warn("releasing the lease", "err", err)
				}
			}()
			pos, err := lease.Load(c.Context(), args[0])
			if err != nil {
				return fmt.Errorf("offsets reset %s: %w", args[0], err)
			}
			marker, err := pipeline.ResetMarker(pos)
			if err != nil {
				return fmt.Errorf("offsets reset %s: stored position %s: %w", args[0], pos, err)
			}
			if err := a.store.Reset(c.Context(), args[0], marker); err != nil {
				return fmt.Errorf("offsets reset %s: %w (nothing or only the source state was reset: run the command again)", args[0], err)
			}
			epoch, _, _ := pipeline.SplitEpoch(marker)
			fmt.Fprintf(g.stdout, "%s: position %s forgotten; the next run starts from scratch in reset epoch %d, after everything already delivered\n", args[0], a.describe(args[0], pos), epoch)
			return nil
		},
	}
	for _, sub := range []*cobra.Command{list, show, reset} {
		addConfigFlag(sub, g)
		c.AddCommand(sub)
	}
	return c
}

// describe renders a position in the source's own terms where the source kind can,
// with its reset epoch.
func (a *app) describe(name string, pos record.Position) string {
	if pos == nil {
		return "(none)"
	}
	epoch, src, err := pipeline.SplitEpoch(pos)
	if err != nil {
		return fmt.Sprintf("damaged: %v", err)
	}
	text := a.describeSource(name, src)
	if epoch == 0 {
		return text
	}
	return fmt.Sprintf("reset epoch %d, %s", epoch, text)
}

// describeSource renders the source's part of a position.
func (a *app) describeSource(name string, src record.Position) string {
	if src == nil {
		return "start of the epoch (the next run starts from scratch)"
	}
	if c, ok := a.cfg.Connectors[name]; ok {
		if sk, err := a.reg.Source(c.Source.Type); err == nil {
			if d, ok := sk.(connector.Describer); ok {
				return fmt.Sprintf("%s (%s)", d.DescribePosition(src), src)
			}
		}
	}
	return src.String()
}
