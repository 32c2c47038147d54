package verify

import (
	"fmt"
	"os"
	"testing"

	"github.com/connectd/connectd/internal/testenv"
)

// sharedPG is the PostgreSQL server of the tests that compare the canonical form with
// the server's own output; started by the first of them, never in -short mode.
var sharedPG = testenv.SharedPostgres(testenv.PostgresOptions{})

func TestMain(m *testing.M) {
	code := m.Run()
	if err := sharedPG.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}
