package fault

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv"
)

var (
	longFlag  = flag.Bool("long", false, "run the long form: thousands of faults (also FAULT_LONG=1)")
	seedFlag  = flag.Int64("seed", 0, "workload and fault seed; 0 picks one from the clock (also FAULT_SEED)")
	killsFlag = flag.Int("kills", 0, "SIGKILLs of the streaming test; 0 means the form's default (also FAULT_KILLS)")
)

// The servers and the binary the tests share.
var (
	connectdBin string
	pgServer    *testenv.Postgres
	s3Server    *testenv.S3
	// The binary with the duckdb destination (cgo), built when a test first needs it;
	// CONNECTD_DUCKDB_BIN tests one built elsewhere.
	duckdbBin = testenv.SharedConnectdDuckDB()
)

// totals adds up what every test of the package injected and checked, for the counts
// line printed last.
var totals struct {
	faults, checked, missing, duplicates atomic.Int64
	ran                                  atomic.Bool
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := runMain(m)
	if totals.ran.Load() {
		// The suite's verdict in one line, after go test's own PASS/FAIL, so it is the
		// last line the test binary prints.
		fmt.Printf("faults injected: %d, changes checked: %d, missing: %d, duplicates: %d\n",
			totals.faults.Load(), totals.checked.Load(), totals.missing.Load(), totals.duplicates.Load())
	}
	os.Exit(code)
}

// long reports whether the long form runs.
func long() bool {
	if *longFlag {
		return true
	}
	v, _ := strconv.ParseBool(os.Getenv("FAULT_LONG"))
	return v
}

// seed is the run's seed: -seed, FAULT_SEED, or the clock.
func seed() int64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	if v, err := strconv.ParseInt(os.Getenv("FAULT_SEED"), 10, 64); err == nil && v != 0 {
		return v
	}
	return time.Now().UnixNano()
}

// killCount is how many SIGKILLs the streaming test injects.
func killCount(def int) int {
	if *killsFlag > 0 {
		return *killsFlag
	}
	if v, err := strconv.Atoi(os.Getenv("FAULT_KILLS")); err == nil && v > 0 {
		return v
	}
	return def
}

func runMain(m *testing.M) int {
	if testing.Short() {
		fmt.Println("fault: skipped in -short mode")
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, cleanup, err := testenv.BuildConnectd(ctx, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault:", err)
		return 1
	}
	defer cleanup()
	connectdBin = bin
	defer func() {
		if err := duckdbBin.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "fault:", err)
		}
	}()
	pgServer, err = testenv.StartPostgres(ctx, testenv.PostgresOptions{ExtraConf: map[string]string{
		// Faults leave slots behind briefly; room for every test's connectors.
		"max_replication_slots": "30",
		"max_wal_senders":       "30",
		// The crash fault SIGKILLs the server: a commit the workload saw must survive
		// it (the OS does not crash, so fsync can stay off).
		"synchronous_commit": "on",
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault: start postgres:", err)
		return 1
	}
	defer pgServer.Stop()
	s3Server, err = testenv.StartS3(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault: start s3:", err)
		return 1
	}
	defer s3Server.Stop()
	return m.Run()
}
