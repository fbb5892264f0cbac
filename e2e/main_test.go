package e2e

import (
	"os"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
)

// parley is the binary built once for this test binary run.
var parley testkit.ParleyBuild

func TestMain(m *testing.M) {
	// PARLEY_E2E_RACE=1: the server under real browser traffic is a good
	// race hunt.
	os.Exit(testkit.ParleyMain(m, &parley, testkit.BuildOptions{Race: os.Getenv("PARLEY_E2E_RACE") != ""}))
}
