// Package lab holds the network lab scenarios of issue #10: real
// Chromium participants, each in a network namespace of its own
// (internal/netlab), whose links the scenarios cap and make lossy while
// a sampler records what every browser receives. They need root inside
// `unshare -n` (scripts/test runs them so) and take minutes each: run
// one at a time, with -run.
package lab

import (
	"os"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
)

// parley is the binary built once for this test binary run.
var parley testkit.ParleyBuild

func TestMain(m *testing.M) {
	os.Exit(testkit.ParleyMain(m, &parley, testkit.BuildOptions{Race: os.Getenv("PARLEY_E2E_RACE") != ""}))
}
