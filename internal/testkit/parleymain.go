package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// ParleyBuild is the parley binary that one test binary builds once,
// in TestMain, for all of its tests.
type ParleyBuild struct {
	path string
	err  error // why there is no binary
}

// BuildOptions says how ParleyMain gets the binary.
type BuildOptions struct {
	// Race builds with the race detector.
	Race bool
	// BinEnv names an environment variable that, when set, names a
	// binary to test instead of building one (a release build, or a
	// known-good one while the tree is being edited).
	BinEnv string
}

// ParleyMain is the body of TestMain for packages that run the parley
// binary:
//
//	var parley testkit.ParleyBuild
//
//	func TestMain(m *testing.M) { os.Exit(testkit.ParleyMain(m, &parley, testkit.BuildOptions{})) }
//
// It builds ./cmd/parley into a temporary directory, keeps it in b, runs
// the tests, removes the directory and returns m.Run's code. A failed
// build does not stop the run: every test that asks b for the binary
// fails with the build's error.
func ParleyMain(m *testing.M, b *ParleyBuild, opt BuildOptions) int {
	if opt.BinEnv != "" {
		if bin := os.Getenv(opt.BinEnv); bin != "" {
			b.path = bin
			if _, err := os.Stat(bin); err != nil {
				b.err = fmt.Errorf("%s: %w", opt.BinEnv, err)
			}
			return m.Run()
		}
	}
	dir, err := os.MkdirTemp("", "parley-test-bin-")
	if err != nil {
		b.err = fmt.Errorf("temp dir for the binary: %w", err)
		return m.Run()
	}
	b.path = filepath.Join(dir, "parley")
	b.err = BuildParley(".", b.path, opt.Race)
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(os.Stderr, "removing the test binary: %v\n", err)
	}
	return code
}

// Bin returns the binary's path, or fails the test with the reason
// there is none.
func (b *ParleyBuild) Bin(t testing.TB) string {
	t.Helper()
	if b.err != nil {
		t.Fatalf("no parley binary to test: %v", b.err)
	}
	return b.path
}
