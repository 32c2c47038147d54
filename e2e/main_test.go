package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv"
)

// The servers and the binary every test of the package shares. Each test isolates
// itself with its own database, connector name (hence slot and publication), lake
// and offsets directory.
var (
	connectdBin string
	pgServer    *testenv.Postgres
	s3Server    *testenv.S3
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// CONNECTD_BIN tests a binary built elsewhere (a release build, another commit).
	bin, cleanup, err := testenv.BuildConnectd(ctx, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer cleanup()
	connectdBin = bin

	// Every test's connector leaves its slot behind; the package has more than the
	// server's default of 20.
	pgServer, err = testenv.StartPostgres(ctx, testenv.PostgresOptions{ExtraConf: map[string]string{"max_replication_slots": "100"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start postgres:", err)
		return 1
	}
	defer pgServer.Stop()

	s3Server, err = testenv.StartS3(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start s3:", err)
		return 1
	}
	defer s3Server.Stop()

	return m.Run()
}
