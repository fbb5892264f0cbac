package hostile

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
)

// parleyBin is the binary built once for this test run; buildErr is why
// it could not be built (every test then fails with it).
var (
	parleyBin string
	buildErr  error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "parley-hostile-bin-")
	if err != nil {
		buildErr = fmt.Errorf("temp dir for the binary: %w", err)
		return m.Run()
	}
	defer os.RemoveAll(dir)
	parleyBin = filepath.Join(dir, "parley")
	// No race build: the tests measure the server's resident memory,
	// which the race detector multiplies.
	buildErr = testkit.BuildParley(".", parleyBin, false)
	return m.Run()
}

// start runs parley with cfg merged over testkit's defaults.
func start(t *testing.T, cfg map[string]any) *testkit.Parley {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("cannot run the hostile-load tests: %v", buildErr)
	}
	return testkit.StartParley(t, testkit.ParleyOptions{Bin: parleyBin, Config: cfg})
}
