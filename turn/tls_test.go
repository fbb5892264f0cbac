package turn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

func TestTLSListener(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	cfg.ListenTLS = []string{"127.0.0.1:0"}
	var roots *x509.CertPool
	cfg.TLSCert, cfg.TLSKey, roots = testkit.SelfSignedCert(t)
	client := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	ts := startServer(t, cfg)
	tlsAddr := ts.Addrs().TLS[0].String()

	o := CheckOptions{Addr: tlsAddr, Transport: "tls", TLSConfig: client, Realm: testRealm,
		Secret: testSecret, PeerIP: "127.0.0.1", Timeout: 5 * time.Second}
	report, err := Check(context.Background(), o)
	if err != nil || !strings.HasPrefix(report, "TURN works") {
		t.Fatalf("over TLS: %q %v", report, err)
	}
	ice := ts.ICEServers("u")
	if !strings.Contains(strings.Join(ice[0].URLs, " "), "turns:127.0.0.1:"+tlsAddr[len("127.0.0.1:"):]+"?transport=tcp") {
		t.Fatalf("no turns: URL in %v", ice[0].URLs)
	}

	// A raw TCP client on the TLS port is counted and released when it leaves.
	c, err := net.Dial("tcp", tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 2*time.Second, "connection counted", func() bool { return counter(ts.metrics.conns.active.WithLabelValues("tls")) >= 1 })
	_ = c.Close()
	testkit.Eventually(t, 2*time.Second, "connection released", func() bool { return counter(ts.metrics.conns.active.WithLabelValues("tls")) == 0 })
}
