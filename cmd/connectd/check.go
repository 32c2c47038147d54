package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/record"
)

func newCheckCmd(g *globalFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Validate the config and reach every source and destination",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := g.load(c.Context(), false)
			if err != nil {
				return err
			}
			failed := 0
			fmt.Fprintf(g.stdout, "ok    config: %s (%d connectors)\n", a.cfg.Path, len(a.cfg.Order))
			failed += printOffsetsCheck(c.Context(), g, a.cfg.Offsets)
			for _, n := range a.cfg.Order {
				sk, dk, err := a.kinds(n)
				if err != nil {
					return err
				}
				var results []connector.CheckResult
				results = append(results, sk.Check(c.Context(), a.sourceParams(n, connector.ModeStream, nil))...)
				results = append(results, dk.Check(c.Context(), a.destinationParams(n))...)
				for _, r := range results {
					failed += printCheck(g, n, r)
				}
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d check(s) failed", failed)}
			}
			return nil
		},
	}
	addConfigFlag(c, g)
	return c
}

// printOffsetsCheck opens the offsets store and lists it, as run will, and returns 1
// if that failed.
func printOffsetsCheck(ctx context.Context, g *globalFlags, storeURL string) int {
	where := redactURL(storeURL)
	st, err := offsets.Open(ctx, storeURL)
	if err == nil {
		var names []string
		names, err = st.List(ctx)
		_ = st.Close()
		if err == nil {
			fmt.Fprintf(g.stdout, "ok    offsets: %s: reachable, %d connector(s) with a committed position\n", where, len(names))
			return 0
		}
	}
	fmt.Fprintf(g.stdout, "FAIL  offsets: %s: %s\n", where, strings.TrimPrefix(err.Error(), "offsets: "))
	fmt.Fprintf(g.stdout, "      fix: make the store reachable and writable by connectd, or point offsets: elsewhere\n")
	return 1
}

// redactURL hides a password a URL may carry (postgres://user:secret@host/db).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}

// printCheck prints one check line (and its fix) and returns 1 if it failed.
func printCheck(g *globalFlags, name string, r connector.CheckResult) int {
	mark := "ok  "
	if !r.OK {
		mark = "FAIL"
	}
	line := fmt.Sprintf("%s  %s: %s", mark, name, r.Name)
	if r.Detail != "" {
		line += ": " + r.Detail
	}
	fmt.Fprintln(g.stdout, line)
	if r.OK {
		return 0
	}
	if r.Fix != "" {
		fmt.Fprintf(g.stdout, "      fix: %s\n", strings.ReplaceAll(r.Fix, "\n", "\n           "))
	}
	return 1
}

func newDiscoverCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "discover -c FILE [--json]",
		Short: "List the tables each source can see, with columns, key and mapped types",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := g.load(c.Context(), false)
			if err != nil {
				return err
			}
			out := map[string][]tableJSON{}
			for _, n := range a.cfg.Order {
				sk, dk, err := a.kinds(n)
				if err != nil {
					return err
				}
				schemas, err := sk.Discover(c.Context(), a.sourceParams(n, connector.ModeStream, nil))
				if err != nil {
					return fmt.Errorf("discover %s: %w", n, err)
				}
				tables := tablesJSON(schemas)
				if p, ok := dk.(connector.DDLPlanner); ok {
					// A destination that creates a table per source table shows the
					// statement, or why it cannot create it, before anything runs.
					for i, s := range schemas {
						ddl, err := p.TargetDDL(a.destinationParams(n), s)
						tables[i].TargetDDL = ddl
						if err != nil {
							tables[i].TargetError = err.Error()
						}
					}
				}
				out[n] = tables
				if !asJSON {
					printTables(g, n, tables)
				}
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			return nil
		},
	}
	addConfigFlag(c, g)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

type columnJSON struct {
	Name       string `json:"name"`
	SourceType string `json:"source_type"`
	Type       string `json:"type"`
	Nullable   bool   `json:"nullable"`
	Key        bool   `json:"key"`
}

type tableJSON struct {
	Namespace string       `json:"namespace"`
	Table     string       `json:"table"`
	Key       []string     `json:"key"`
	Columns   []columnJSON `json:"columns"`
	// TargetDDL creates the table's target table, for destinations that create one.
	TargetDDL   string `json:"target_ddl,omitempty"`
	TargetError string `json:"target_error,omitempty"`
}

func tablesJSON(schemas []*record.Schema) []tableJSON {
	out := make([]tableJSON, 0, len(schemas))
	for _, s := range schemas {
		t := tableJSON{Namespace: s.Namespace, Table: s.Table, Key: []string{}}
		for _, col := range s.Columns {
			t.Columns = append(t.Columns, columnJSON{col.Name, col.SourceType, col.Type.String(), col.Nullable, col.Key})
			if col.Key {
				t.Key = append(t.Key, col.Name)
			}
		}
		out = append(out, t)
	}
	return out
}

func printTables(g *globalFlags, name string, tables []tableJSON) {
	fmt.Fprintf(g.stdout, "%s: %d table(s)\n", name, len(tables))
	for _, t := range tables {
		fmt.Fprintf(g.stdout, "\n  %s.%s\n", t.Namespace, t.Table)
		tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    column\tsource type\ttype\tnull\tkey")
		for _, col := range t.Columns {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", col.Name, col.SourceType, col.Type, yes(col.Nullable), yes(col.Key))
		}
		tw.Flush()
		switch {
		case t.TargetError != "":
			fmt.Fprintf(g.stdout, "    target: cannot be created: %s\n", t.TargetError)
		case t.TargetDDL != "":
			fmt.Fprintf(g.stdout, "    target:\n      %s\n", strings.ReplaceAll(t.TargetDDL, "\n", "\n      "))
		}
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}
