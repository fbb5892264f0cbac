package turn

import (
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// TestUnauthenticatedFloodKeepsNoState sends many Allocate requests that
// carry no or forged credentials: every one is answered, and neither pion
// (stateless nonces) nor our caches keep anything per request.
func TestUnauthenticatedFloodKeepsNoState(t *testing.T) {
	cfg := testConfig()
	cfg.SharedSecrets = []string{testSecret, testSecret2} // exercise the rotation cache
	ts := startServer(t, cfg)
	c, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 2000
	buf := make([]byte, 1500)
	answered := 0
	for i := range n {
		var req *stun.Message
		if i%2 == 0 {
			req = stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
				requestedTransport(17), stun.Fingerprint)
		} else {
			u, _ := RESTCredentials(testSecret, "flood", time.Hour, time.Now())
			req = stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
				requestedTransport(17), stun.NewUsername(u), stun.NewRealm(testRealm), stun.NewNonce("bogus"),
				stun.NewLongTermIntegrity(u, testRealm, "forged"), stun.Fingerprint)
		}
		if _, err := c.Write(req.Raw); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(buf); err == nil {
			answered++
		}
	}
	if answered < n*9/10 {
		t.Fatalf("answered %d of %d", answered, n)
	}
	ts.auth.mu.Lock()
	learned := len(ts.auth.learned)
	ts.auth.mu.Unlock()
	ts.quotas.mu.Lock()
	pending := len(ts.quotas.pending)
	ts.quotas.mu.Unlock()
	if learned != 0 || pending != 0 || ts.AllocationCount() != 0 {
		t.Fatalf("state after flood: learned %d pending %d allocations %d", learned, pending, ts.AllocationCount())
	}
}
