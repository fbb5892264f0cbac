package firefox

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
)

// parleyBin is the server binary built once per test binary run;
// parleyBuildErr says why it could not be built (every test then fails
// with it rather than skipping).
var (
	parleyBin      string
	parleyBuildErr error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// PARLEY_E2E_BIN names a parley binary to test instead of building
	// one, e.g. a release build, or a known-good one while the tree is
	// being edited.
	if bin := os.Getenv("PARLEY_E2E_BIN"); bin != "" {
		parleyBin = bin
		if _, err := os.Stat(bin); err != nil {
			parleyBuildErr = fmt.Errorf("PARLEY_E2E_BIN: %w", err)
		}
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "parley-e2e-firefox-bin-")
	if err != nil {
		parleyBuildErr = fmt.Errorf("temp dir for the binary: %w", err)
		return m.Run()
	}
	defer os.RemoveAll(dir)
	parleyBin = filepath.Join(dir, "parley")
	parleyBuildErr = testkit.BuildParley(".", parleyBin, false)
	return m.Run()
}
