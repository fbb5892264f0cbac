package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
)

// binPath is the parley binary built once for this test binary run;
// buildErr is why it could not be built (every test then fails with it).
var (
	binPath  string
	buildErr error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "parley-e2e-bin-")
	if err != nil {
		buildErr = fmt.Errorf("temp dir for the binary: %w", err)
		return m.Run()
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "parley")
	// PARLEY_E2E_RACE=1: the server under real browser traffic is a good
	// race hunt.
	buildErr = testkit.BuildParley(".", binPath, os.Getenv("PARLEY_E2E_RACE") != "")
	return m.Run()
}

// requireBinary fails the test when the server binary could not be built.
func requireBinary(t *testing.T) {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("cannot run end-to-end tests: %v", buildErr)
	}
}
