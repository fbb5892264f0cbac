package turn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and returns its files and
// a client config trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "turn test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	return certFile, keyFile, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func TestTLSListener(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	cfg.ListenTLS = []string{"127.0.0.1:0"}
	var client *tls.Config
	cfg.TLSCert, cfg.TLSKey, client = selfSigned(t)
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
	waitFor(t, 2*time.Second, "connection counted", func() bool { return counter(ts.metrics.tcpConnsActive) >= 1 })
	_ = c.Close()
	waitFor(t, 2*time.Second, "connection released", func() bool { return counter(ts.metrics.tcpConnsActive) == 0 })
}

func TestMaxTCPConnections(t *testing.T) {
	cfg := testConfig()
	cfg.MaxTCPConnections = 2
	ts := startServer(t, cfg)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", ts.tcp)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, 2*time.Second, "refusal", func() bool { return counter(ts.metrics.tcpConnsRefused) == 1 })
	// The refused connection is closed by the server.
	_ = conns[2].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conns[2].Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection still open")
	}
}
