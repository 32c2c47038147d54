package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/connectd/connectd/connector"
)

// snapshotPoll is how often `connectd snapshot --wait` looks whether the request is done.
const snapshotPoll = time.Second

func newSnapshotCmd(g *globalFlags) *cobra.Command {
	var name, table, where string
	var wait bool
	c := &cobra.Command{
		Use:   "snapshot -c FILE --connector NAME --table SCHEMA.TABLE [--where EXPR] [--wait]",
		Short: "Read a table again (or the rows that match a filter) while the connector keeps streaming",
		Long: "Queues a snapshot of one table in the connector's state. The running connectd (or the next run or sync)\n" +
			"reads it in chunks between watermarks while its stream goes on, and delivers the rows as op r records.\n" +
			"--where restricts it to the rows a SQL condition on the table matches. --wait returns once it is done.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if name == "" || table == "" {
				return usageErr(errors.New("snapshot: --connector and --table are required"))
			}
			a, err := g.load(c.Context(), true)
			if err != nil {
				return err
			}
			defer a.close()
			if _, err := a.selected([]string{name}); err != nil {
				return err
			}
			sk, _, err := a.kinds(name)
			if err != nil {
				return err
			}
			rs, ok := sk.(connector.Resnapshotter)
			if !ok {
				return fmt.Errorf("snapshot: connector %s: the %s source cannot read a table again while streaming; `connectd offsets reset %s` takes a new snapshot of every table",
					name, a.cfg.Connectors[name].Source.Type, name)
			}
			p := a.sourceParams(name, connector.ModeStream, nil)
			id, err := rs.RequestSnapshot(c.Context(), p, table, where)
			if err != nil {
				return fmt.Errorf("snapshot %s %s: %w", name, table, err)
			}
			fmt.Fprintf(g.stdout, "%s: snapshot of %s queued (request %s); the running connectd reads it while streaming, or the next run or sync does\n", name, table, id)
			if !wait {
				return nil
			}
			return waitSnapshot(c.Context(), rs, p, id, func() { fmt.Fprintf(g.stdout, "%s: snapshot of %s done\n", name, table) })
		},
	}
	addConfigFlag(c, g)
	f := c.Flags()
	f.StringVar(&name, "connector", "", "the connector")
	f.StringVar(&table, "table", "", "the table, schema.table as the source names it")
	f.StringVar(&where, "where", "", "read only the rows this SQL condition on the table matches")
	f.BoolVar(&wait, "wait", false, "return once the table was read")
	return c
}

func waitSnapshot(ctx context.Context, rs connector.Resnapshotter, p connector.SourceParams, id string, done func()) error {
	t := time.NewTicker(snapshotPoll)
	defer t.Stop()
	for {
		ok, err := rs.SnapshotDone(ctx, p, id)
		if err != nil {
			return fmt.Errorf("snapshot: waiting for request %s: %w", id, err)
		}
		if ok {
			done()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
