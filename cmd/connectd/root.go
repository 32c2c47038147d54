package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// globalFlags are shared by every subcommand.
type globalFlags struct {
	configPath string
	logFormat  string
	logLevel   string
	stdout     io.Writer
	stderr     io.Writer
	// logs is where the logger writes: stderr, or the progress bars while they show.
	logs *switchWriter
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globalFlags{stdout: stdout, stderr: stderr, logs: &switchWriter{w: stderr}}
	root := &cobra.Command{
		Use:           "connectd",
		Short:         "Change-data-capture from PostgreSQL and MySQL into a Parquet lake, exactly once",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr(fmt.Errorf("%w (see `%s --help`)", err, c.CommandPath()))
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.logFormat, "log-format", "auto", "log format: auto (text on a terminal, JSON otherwise), text or json")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")

	root.AddCommand(
		newRunCmd(g),
		newSyncCmd(g),
		newCheckCmd(g),
		newDiscoverCmd(g),
		newOffsetsCmd(g),
		newVerifyCmd(g),
		newSnapshotCmd(g),
		newVersionCmd(g),
		newSchemaCmd(g),
		newDocsCmd(g),
	)
	return root
}

// addConfigFlag adds the -c/--config flag every config-reading command takes.
func addConfigFlag(c *cobra.Command, g *globalFlags) {
	c.Flags().StringVarP(&g.configPath, "config", "c", "", "path of the config file (required)")
}

// logger builds the one logger the process uses.
func (g *globalFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, usageErr(fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel))
	}
	opts := &slog.HandlerOptions{Level: level}
	format := strings.ToLower(g.logFormat)
	if format == "auto" {
		format = "json"
		if isTerminal(g.stderr) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(g.logs, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.logs, opts)), nil
	}
	return nil, usageErr(fmt.Errorf("--log-format %q: want auto, text or json", g.logFormat))
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// isCobraUsageError recognises the errors cobra returns for a bad command line.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "flag needs an argument", "invalid argument", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func newVersionCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintf(g.stdout, "connectd %s (commit %s, %s)\n", version, commit, goVersion())
			return nil
		},
	}
}
