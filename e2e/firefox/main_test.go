package firefox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
	parleyBuildErr = build(parleyBin)
	return m.Run()
}

// build compiles ./cmd/parley in the module root, two levels above this
// package's directory (where `go test` runs us).
func build(out string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go tool is not on PATH: %w", err)
	}
	cmd := exec.Command(goTool, "build", "-o", out, "./cmd/parley")
	cmd.Dir = filepath.Join("..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/parley: %w\n%s", err, b)
	}
	return nil
}
