package cluster

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// parleyCommand runs the parley binary as a command-line tool (cluster
// drain, cluster nodes) with the test's environment minus its PARLEY_*
// variables: parley rejects names it does not know (PARLEY_E2E_RACE is
// the harness's), and the config file alone is to decide its settings,
// as for the nodes testkit starts.
func parleyCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(parley.Bin(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// The harness's own variables (PARLEY_E2E_RACE=1 asks for a race-built
// binary) do not reach the commands it runs: parley rejects PARLEY_*
// names it does not know, so `cluster nodes` would fail under a race run.
func TestClusterCommandIgnoresHarnessEnv(t *testing.T) {
	env := newClusterEnv(t)
	a := env.startNode(t, "a")
	t.Setenv("PARLEY_E2E_RACE", "1")
	out, err := parleyCommand(t, "cluster", "nodes", "--config", a.ConfigPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "a ") {
		t.Fatalf("parley cluster nodes with PARLEY_E2E_RACE=1 set: %v\n%s", err, out)
	}
}
