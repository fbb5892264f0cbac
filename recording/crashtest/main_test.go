package crashtest

import (
	"os"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
)

// parley is the binary built once for this package's tests. No race
// build: the process is killed with SIGKILL, which ends any report the
// race detector would print, and the build costs minutes on a loaded
// machine.
var parley testkit.ParleyBuild

func TestMain(m *testing.M) {
	os.Exit(testkit.ParleyMain(m, &parley, testkit.BuildOptions{}))
}
