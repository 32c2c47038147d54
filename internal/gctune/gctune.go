// Package gctune sets the Go garbage collector's target for connectd's processes.
//
// connectd and plugin processes keep little live data (a few batches in flight, one
// row group per open file) but allocate fast, and at Go's default GOGC of 100 the
// collector then runs a cycle every few megabytes allocated. A higher target trades
// a little memory for fewer cycles. The user's own GOGC or GOMEMLIMIT always wins.
package gctune

import (
	"os"
	"runtime/debug"
)

// Connectd is connectd's target: in the 2M-row snapshot benchmark 200 took about 5%
// less CPU per row than 100, with peak RSS from about 135 to 200 MiB, and 400 bought
// nothing more (docs/benchmarks.md, run 4).
const Connectd = 200

// Plugin is a plugin process's target, set by the plugin SDK. A plugin's live heap
// is smaller still (the batches being encoded or decoded), so a higher target costs
// a few megabytes while the collector's fixed cost per cycle drops further: in
// bench/plugin a source plugin ran about 20% faster at 400 than at 100
// (docs/benchmarks.md, Plugins).
const Plugin = 400

// Set sets the collector's target to percent unless GOGC or GOMEMLIMIT is set in
// the environment, and reports whether it did.
func Set(percent int) bool {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(percent)
	return true
}
