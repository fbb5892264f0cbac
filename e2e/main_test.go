package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
	buildErr = buildParley(binPath)
	return m.Run()
}

// buildParley compiles ./cmd/parley from the module root (the parent of
// this package's directory, where `go test` runs us). PARLEY_E2E_RACE=1
// builds it with the race detector.
func buildParley(out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go tool is not on PATH: %w", err)
	}
	args := []string{"build", "-o", out}
	if os.Getenv("PARLEY_E2E_RACE") != "" {
		// The server under real browser traffic is a good race hunt.
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, "./cmd/parley")...)
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/parley: %w\n%s", err, b)
	}
	return nil
}

// requireBinary fails the test when the server binary could not be built.
func requireBinary(t *testing.T) {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("cannot run end-to-end tests: %v", buildErr)
	}
}
