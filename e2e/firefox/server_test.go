package firefox

import (
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
)

// server is one parley process on loopback ports (testkit's launcher).
type server = testkit.Parley

// startServer runs parley with testkit's dev-mode config (guest tokens
// from /api/dev/token, SFU candidates only on 127.0.0.1) until the test
// ends.
func startServer(t *testing.T) *server {
	t.Helper()
	p := testkit.StartParley(t, testkit.ParleyOptions{
		Bin: parley.Bin(t),
		// The signaling default for allowed origins, as this suite has
		// always run.
		Config: map[string]any{"signaling": map[string]any{"allowed_origins": nil}},
	})
	// Runs before testkit's Stop (cleanups run last-in first-out): a
	// server that died while the test ran fails the test.
	t.Cleanup(func() {
		select {
		case <-p.Exited():
			t.Errorf("parley exited during the test: %v", p.ExitErr())
		default:
		}
	})
	return p
}
