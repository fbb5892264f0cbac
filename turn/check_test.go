package turn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

func TestCheck(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	ts := startServer(t, cfg)
	ctx := context.Background()

	for _, transport := range []string{"udp", "tcp"} {
		for _, peerIP := range []string{"127.0.0.1", ""} { // local echo; second allocation
			o := ts.opts(transport)
			o.Secret, o.User, o.PeerIP, o.Timeout = testSecret, "checker", peerIP, 5*time.Second
			report, err := Check(ctx, o)
			if err != nil || !strings.HasPrefix(report, "TURN works: ") || !strings.Contains(report, "5/5") {
				t.Fatalf("%s peer=%q: %q, %v", transport, peerIP, report, err)
			}
		}
	}
	testkit.Eventually(t, 3*time.Second, "check allocations released", func() bool { return ts.AllocationCount() == 0 })

	o := ts.opts("udp")
	o.Secret, o.Timeout = "wrong-secret-0123456789", 5*time.Second
	report, err := Check(ctx, o)
	if err == nil || !strings.Contains(report, "credential refused") {
		t.Fatalf("wrong secret: %q", report)
	}
}

func TestCheckReportsPolicyAndSilence(t *testing.T) {
	ts := startServer(t, testConfig()) // loopback peers refused
	o := ts.opts("udp")
	o.Secret, o.PeerIP, o.Timeout = testSecret, "127.0.0.1", 5*time.Second
	report, err := Check(context.Background(), o)
	if err == nil || !strings.Contains(report, "turn.allowed_peer_cidrs") {
		t.Fatalf("denied peer: %q", report)
	}

	// Nothing listens here: the check says so instead of hanging.
	o = CheckOptions{Addr: "127.0.0.1:9", Transport: "udp", Realm: testRealm, Secret: testSecret, Timeout: 2 * time.Second}
	report, err = Check(context.Background(), o)
	if err == nil || !strings.HasPrefix(report, "TURN does not work") {
		t.Fatalf("no server: %q", report)
	}
	t.Log(report)
}

func TestLocalCheckOptions(t *testing.T) {
	cfg := DefaultConfig()
	if _, err := cfg.LocalCheckOptions("udp"); err != ErrNoSecret {
		t.Fatalf("no credential: %v", err)
	}
	cfg.SharedSecrets = []string{testSecret}
	o, err := cfg.LocalCheckOptions("udp")
	if err != nil || o.Addr != "127.0.0.1:3478" || o.Secret != testSecret || o.Realm != "parley" || o.PeerIP != "" {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := cfg.LocalCheckOptions("tls"); err == nil || !strings.Contains(err.Error(), "turn.listen_tls") {
		t.Fatalf("tls without cert: %v", err)
	}

	// Against a running server with static users only.
	tc := testConfig()
	tc.SharedSecrets = nil
	tc.Users = map[string]string{"zed": "pw-z", "amy": "pw-a"}
	tc.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	ts := startServer(t, tc)
	tc.ListenUDP = []string{ts.udp}
	o, err = tc.LocalCheckOptions("udp")
	if err != nil || o.Username != "amy" {
		t.Fatalf("%+v %v", o, err)
	}
	if report, err := Check(context.Background(), o); err != nil {
		t.Fatalf("static user check: %s", report)
	}
}
