package firefox

import (
	"os"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
)

// parley is the server binary built once per test binary run.
var parley testkit.ParleyBuild

func TestMain(m *testing.M) {
	// PARLEY_E2E_BIN names a parley binary to test instead of building
	// one, e.g. a release build, or a known-good one while the tree is
	// being edited.
	os.Exit(testkit.ParleyMain(m, &parley, testkit.BuildOptions{BinEnv: "PARLEY_E2E_BIN"}))
}
