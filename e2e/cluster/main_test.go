// Package cluster holds the end-to-end tests of cluster mode
// (docs/cluster.md): Parley processes on the real Redis and PostgreSQL of
// this machine. They are apart from ./e2e because those run in a network
// namespace with only loopback, where these services are not reachable;
// ./scripts/test runs these in the normal namespace, after
// scripts/test-services made sure both services answer.
package cluster

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
