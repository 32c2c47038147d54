package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/connectd/connectd/e2e/testenv"
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
	if connectdBin = os.Getenv("CONNECTD_BIN"); connectdBin == "" {
		binDir, err := os.MkdirTemp("", "connectd-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(binDir)
		connectdBin = filepath.Join(binDir, "connectd")
		if err := buildConnectd(ctx, connectdBin); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	}

	var err error
	pgServer, err = testenv.StartPostgres(ctx, testenv.PostgresOptions{})
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

// buildConnectd builds ./cmd/connectd from the module root (the parent of e2e/, where
// go test runs) into out.
func buildConnectd(ctx context.Context, out string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root := filepath.Dir(wd)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("build connectd: no go.mod in %s (run the tests from e2e/): %w", root, err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/connectd")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/connectd: %w\n%s", err, b)
	}
	return nil
}
