package hostile

import (
	"os"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
)

// parley is the binary built once for this test run. No race build: the
// tests measure the server's resident memory, which the race detector
// multiplies.
var parley testkit.ParleyBuild

func TestMain(m *testing.M) {
	os.Exit(testkit.ParleyMain(m, &parley, testkit.BuildOptions{}))
}

// start runs parley with cfg merged over testkit's defaults.
func start(t *testing.T, cfg map[string]any) *testkit.Parley {
	t.Helper()
	return testkit.StartParley(t, testkit.ParleyOptions{Bin: parley.Bin(t), Config: cfg})
}
