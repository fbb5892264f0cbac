package testkit

import (
	"crypto/tls"
	"testing"
)

// A client trusting only the returned pool completes a handshake with a
// server using the written files, for the address 127.0.0.1.
func TestSelfSignedCertHandshake(t *testing.T) {
	certFile, keyFile, roots := SelfSignedCert(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			err = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
		served <- err
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	_ = c.Close()
	if err := <-served; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
}
