package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/connectd/connectd/internal/testenv"
)

// The servers and the binary every test of the package shares, each started by the
// first test that needs it (none in -short mode). Each test isolates itself with its
// own database, connector name (hence slot and publication), lake and offsets
// directory.
var (
	sharedBin = testenv.SharedConnectd() // CONNECTD_BIN tests a binary built elsewhere
	// The binary with the duckdb destination (cgo), for its tests only;
	// CONNECTD_DUCKDB_BIN tests one built elsewhere.
	sharedDuckBin = testenv.SharedConnectdDuckDB()
	// Every test's connector leaves its slot behind; the package has more than the
	// server's default of 20.
	sharedPG = testenv.SharedPostgres(testenv.PostgresOptions{ExtraConf: map[string]string{"max_replication_slots": "100"}})
	sharedS3 = testenv.SharedS3()
	// The target cluster of the warehouse destination's tests: a server of its own, as
	// a warehouse would be, so that no test compares a database with itself.
	sharedTarget = testenv.SharedPostgres(testenv.PostgresOptions{WalLevel: "replica"})
)

func connectdBin(t testing.TB) string         { t.Helper(); return sharedBin.Get(t) }
func duckdbBin(t testing.TB) string           { t.Helper(); return sharedDuckBin.Get(t) }
func pgServer(t testing.TB) *testenv.Postgres { t.Helper(); return sharedPG.Get(t) }
func s3Server(t testing.TB) *testenv.S3       { t.Helper(); return sharedS3.Get(t) }
func targetServer(t testing.TB) *testenv.Postgres {
	t.Helper()
	return sharedTarget.Get(t)
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []interface{ Stop() error }{sharedS3, sharedTarget, sharedPG, sharedBin, sharedDuckBin} {
		if err := s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
		}
	}
	os.Exit(code)
}
