package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/connectd/connectd/connector"
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
		Short: "Forget one connector's committed position: its next run starts from scratch (snapshot included)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, err := g.load(c.Context(), true)
			if err != nil {
				return err
			}
			defer a.close()
			pos, err := a.store.Load(c.Context(), args[0])
			if err != nil {
				return fmt.Errorf("offsets reset %s: %w", args[0], err)
			}
			if err := a.store.Reset(c.Context(), args[0]); err != nil {
				return fmt.Errorf("offsets reset %s: %w", args[0], err)
			}
			fmt.Fprintf(g.stdout, "%s: position %s forgotten\n", args[0], a.describe(args[0], pos))
			return nil
		},
	}
	for _, sub := range []*cobra.Command{list, show, reset} {
		addConfigFlag(sub, g)
		c.AddCommand(sub)
	}
	return c
}

// describe renders a position in the source's own terms where the source kind can.
func (a *app) describe(name string, pos record.Position) string {
	if pos == nil {
		return "(none)"
	}
	if c, ok := a.cfg.Connectors[name]; ok {
		if sk, err := a.reg.Source(c.Source.Type); err == nil {
			if d, ok := sk.(connector.Describer); ok {
				return fmt.Sprintf("%s (%s)", d.DescribePosition(pos), pos)
			}
		}
	}
	return pos.String()
}
