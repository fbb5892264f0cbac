package chatload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
)

// testKeyID is the API key id of the server's config (testkit's).
const testKeyID = testkit.ParleyAPIKey

// serverBin is the real parley binary, built once by TestMain.
var serverBin string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "chatload-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		serverBin = filepath.Join(dir, "parley")
		if err := testkit.BuildParley(".", serverBin, false); err != nil {
			fmt.Fprintf(os.Stderr, "building parley: %v\n", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// server is one parley process (testkit.StartParley) that can be killed
// and started again on the same ports and data directory.
type server struct {
	t    *testing.T
	opts testkit.ParleyOptions
	p    *testkit.Parley // nil until the first start
	keys *auth.KeySet
}

// newServer prepares a server for a fresh data directory; signaling is
// merged into the signaling section of its config. Nothing runs until
// start.
func newServer(t *testing.T, signaling map[string]any) *server {
	t.Helper()
	keys, err := auth.NewKeySet(map[string]string{testkit.ParleyAPIKey: testkit.ParleyAPISecret})
	if err != nil {
		t.Fatal(err)
	}
	sig := map[string]any{"dev_mode": nil} // chat tokens only, as in production
	for k, v := range signaling {
		sig[k] = v
	}
	return &server{t: t, keys: keys, opts: testkit.ParleyOptions{
		Bin:     serverBin,
		Healthy: 15 * time.Second,
		Config: map[string]any{
			"dev":       nil,
			"log":       map[string]any{"level": "warn"},
			"signaling": sig,
		},
	}}
}

func (s *server) base() string  { return s.p.URL }
func (s *server) wsURL() string { return "ws://" + s.p.Host + "/ws" }

// start runs the binary (again, after kill) and waits until /healthz
// answers.
func (s *server) start() {
	s.t.Helper()
	if s.p == nil {
		s.p = testkit.StartParley(s.t, s.opts)
		// Registered after StartParley's own cleanup, so it runs first:
		// the process ends as it did in every crash of the test, by
		// SIGKILL, and testkit's Stop then finds nothing to stop.
		s.t.Cleanup(s.kill)
		return
	}
	s.p.Restart(s.t)
}

// kill sends SIGKILL and waits for the process to be reaped.
func (s *server) kill() {
	s.t.Helper()
	if s.p != nil {
		s.p.Kill(s.t)
	}
}

// token mints a messaging-only (room "") chat token.
func (s *server) token(identity string) func() (string, error) {
	return func() (string, error) { return s.roomToken(identity, "") }
}

// roomToken mints a chat-only token for room ("" for messaging only).
func (s *server) roomToken(identity, room string) (string, error) {
	return s.keys.Issue(testKeyID, auth.Claims{Identity: identity, Name: strings.ToUpper(identity), Room: room, Grants: auth.Grants{Chat: true}}, 10*time.Minute)
}

func (s *server) dial(ctx context.Context, identity string) (*Conn, error) {
	tok, err := s.token(identity)()
	if err != nil {
		return nil, err
	}
	return Dial(ctx, DialOptions{URL: s.wsURL(), Origin: s.base(), Token: tok})
}
