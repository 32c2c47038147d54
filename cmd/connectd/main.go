// Command connectd is a change-data-capture daemon: it streams changes from databases
// into a Parquet lake with exactly-once delivery. See docs/design.md and the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/connectd/connectd/internal/gctune"
)

// Set by the linker: -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// exitError carries the process exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks an error as a usage or config error (exit status 2).
func usageErr(err error) error { return &exitError{code: 2, err: err} }

func main() {
	gctune.Set(gctune.Connectd)
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "connectd: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if isCobraUsageError(err) {
		return 2
	}
	return 1
}
