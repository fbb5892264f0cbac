package turn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"

	"github.com/parleyhq/parley/internal/testkit"
)

// budgetServer runs a server with a TCP and a TLS listener on loopback.
func budgetServer(t *testing.T, mut func(*Config)) (ts *testServer, tlsAddr string, roots *x509.CertPool) {
	t.Helper()
	cfg := testConfig()
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	cfg.ListenTLS = []string{"127.0.0.1:0"}
	cfg.TLSCert, cfg.TLSKey, roots = testkit.SelfSignedCert(t)
	mut(&cfg)
	ts = startServer(t, cfg)
	// The clients' cleanups run first; then wait until pion has deleted
	// their allocations (it does before our wrapper's Close releases the
	// place), so the server's shutdown does not race pion's own
	// per-connection goroutines (pion closes a listener's allocation
	// manager without waiting for them).
	t.Cleanup(func() {
		testkit.Eventually(t, 5*time.Second, "client connections gone", func() bool {
			return counter(ts.metrics.conns.active.WithLabelValues("tcp")) == 0 &&
				counter(ts.metrics.conns.active.WithLabelValues("tls")) == 0
		})
	})

	return ts, ts.Addrs().TLS[0].String(), roots
}

// dialFrom opens a TCP connection from a loopback address of its own
// (127.0.0.0/8 is all local), as a client on another host would.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { _ = c.Close() })

	return c
}

// allocFrom makes a pion client allocation over TCP (or TLS when roots
// is set) from the given loopback address.
func allocFrom(t *testing.T, from, addr string, roots *x509.CertPool) (*pionturn.Client, error) {
	t.Helper()
	var c net.Conn = dialFrom(t, from, addr)
	if roots != nil {
		tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err != nil {
			return nil, err
		}
		c = tc
	}
	u, p := RESTCredentials(testSecret, "legit", time.Hour, time.Now())
	client, err := newTCPClient(c, addr, u, p)
	if err != nil {
		return nil, err
	}
	t.Cleanup(client.Close)
	if _, err := client.Allocate(); err != nil {
		return nil, err
	}

	return client, nil
}

// closedByServer waits up to limit for the server to close c.
func closedByServer(c net.Conn, limit time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	_, err := c.Read(make([]byte, 1))

	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestUnauthenticatedConnectionsTimeOut(t *testing.T) {
	ts, tlsAddr, roots := budgetServer(t, func(c *Config) { c.TCPAuthTimeout = time.Second })
	legit, err := allocFrom(t, "127.0.0.2", ts.tcp, nil)
	if err != nil {
		t.Fatal(err)
	}
	idleTCP := dialFrom(t, "127.0.0.1", ts.tcp)
	idleTLS := dialFrom(t, "127.0.0.1", tlsAddr) // not even a handshake
	for name, c := range map[string]net.Conn{"tcp": idleTCP, "tls": idleTLS} {
		if !closedByServer(c, 5*time.Second) {
			t.Fatalf("idle %s connection still open 5 s after a 1 s deadline", name)
		}
		if got := counter(ts.metrics.conns.authTimeouts.WithLabelValues(name)); got != 1 {
			t.Fatalf("%s auth timeouts %v, want 1", name, got)
		}
	}
	// The authenticated connection outlived the deadline.
	if err := legit.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err != nil {
		t.Fatalf("authenticated client after the deadline: %v", err)
	}
	// So does a TLS client that authenticated.
	if _, err := allocFrom(t, "127.0.0.2", tlsAddr, roots); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if got := counter(ts.metrics.conns.authTimeouts.WithLabelValues("tls")); got != 1 {
		t.Fatalf("tls auth timeouts %v after an authenticated client waited, want still 1", got)
	}
}

func TestPerAddressConnectionCaps(t *testing.T) {
	ts, _, _ := budgetServer(t, func(c *Config) {
		c.MaxTCPConnectionsPerIP = 3
		c.MaxTCPUnauthenticatedPerIP = 2
	})
	// Two pending connections from one address fill its unauthenticated cap.
	for range 2 {
		dialFrom(t, "127.0.0.1", ts.tcp)
	}
	third := dialFrom(t, "127.0.0.1", ts.tcp)
	if !closedByServer(third, 2*time.Second) {
		t.Fatal("third unauthenticated connection from one address accepted")
	}
	if got := counter(ts.metrics.conns.refused.WithLabelValues("tcp", refusedAddressPending)); got != 1 {
		t.Fatalf("refusals %v, want 1", got)
	}
	// Another address is not affected.
	if _, err := allocFrom(t, "127.0.0.2", ts.tcp, nil); err != nil {
		t.Fatalf("client from another address: %v", err)
	}
	// Authenticated connections count toward the address cap (3): two
	// more from 127.0.0.2 fit, the fourth does not.
	if _, err := allocFrom(t, "127.0.0.2", ts.tcp, nil); err != nil {
		t.Fatal(err)
	}
	dialFrom(t, "127.0.0.2", ts.tcp)
	fourth := dialFrom(t, "127.0.0.2", ts.tcp)
	if !closedByServer(fourth, 2*time.Second) {
		t.Fatal("fourth connection from one address accepted")
	}
	if got := counter(ts.metrics.conns.refused.WithLabelValues("tcp", refusedAddressCap)); got != 1 {
		t.Fatalf("address-cap refusals %v, want 1", got)
	}
}

// A full TCP pool takes nothing from TLS, and a newcomer replaces the
// oldest unauthenticated connection; only a pool of authenticated
// connections refuses.
func TestSeparatePoolsAndEviction(t *testing.T) {
	ts, tlsAddr, roots := budgetServer(t, func(c *Config) {
		c.MaxTCPConnections = 4
		c.MaxTLSConnections = 4
	})
	var idle []net.Conn
	for _, from := range []string{"127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		idle = append(idle, dialFrom(t, from, ts.tcp))
	}
	testkit.Eventually(t, 2*time.Second, "TCP pool full", func() bool {
		return counter(ts.metrics.conns.active.WithLabelValues("tcp")) == 4
	})
	if _, err := allocFrom(t, "127.0.0.2", tlsAddr, roots); err != nil {
		t.Fatalf("TLS client while the TCP pool is full: %v", err)
	}
	if _, err := allocFrom(t, "127.0.0.2", ts.tcp, nil); err != nil {
		t.Fatalf("TCP client while the TCP pool is full of idle connections: %v", err)
	}
	if !closedByServer(idle[0], 2*time.Second) {
		t.Fatal("oldest idle connection not evicted")
	}
	if got := counter(ts.metrics.conns.evicted.WithLabelValues("tcp")); got != 1 {
		t.Fatalf("evictions %v, want 1", got)
	}
	for range 3 { // authenticated clients take the other three places
		if _, err := allocFrom(t, "127.0.0.2", ts.tcp, nil); err != nil {
			t.Fatal(err)
		}
	}
	late := dialFrom(t, "127.0.0.6", ts.tcp)
	if !closedByServer(late, 2*time.Second) {
		t.Fatal("connection accepted into a pool of authenticated connections")
	}
	if got := counter(ts.metrics.conns.refused.WithLabelValues("tcp", refusedPoolFull)); got != 1 {
		t.Fatalf("pool-full refusals %v, want 1", got)
	}
}
