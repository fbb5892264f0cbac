package signaling

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

func TestTLSJoin(t *testing.T) {
	certPath, keyPath, pool := testkit.SelfSignedCert(t)
	env := startServer(t, func(c *Config) { c.TLSCert, c.TLSKey = certPath, keyPath })
	addr := env.srv.Addr().String()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: waitLimit}
	h := http.Header{"Origin": {"https://" + addr}}
	ws, _, err := d.Dial("wss://"+addr+"/ws", h)
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer ws.Close()
	c := &client{t: t, ws: ws, autoPong: true}
	c.send("join", "1", proto.JoinBody{Token: env.token("ada", "r", allGrants), Protocol: 1})
	c.expect("joined")

	// Plain HTTP on the TLS port is not served.
	ws2, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err == nil {
		ws2.Close()
		t.Fatal("plain ws accepted on the TLS listener")
	}
}

func TestRunFailsOnBadTLSFiles(t *testing.T) {
	cfg := testConfig()
	cfg.TLSCert, cfg.TLSKey = "/nonexistent/cert.pem", "/nonexistent/key.pem"
	keys, err := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Deps{Media: newFakeMedia(), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	err = s.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "signaling.tls_cert") {
		t.Fatalf("Run error %v, want one naming signaling.tls_cert", err)
	}
	cancel()
	if addr := s.WaitAddr(ctx); addr != nil {
		t.Fatalf("WaitAddr = %v for a server that never listened", addr)
	}
}

func TestNewRejects(t *testing.T) {
	good := testConfig()
	bad := testConfig()
	bad.PingTimeout = bad.PingInterval
	tests := []struct {
		name string
		cfg  Config
		deps Deps
	}{
		{"invalid config", bad, Deps{Media: newFakeMedia()}},
		{"no media", good, Deps{}},
		{"no keys anywhere", good, Deps{Media: newFakeMedia()}},
	}
	for _, tc := range tests {
		if _, err := New(tc.cfg, tc.deps); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
	withKeys := testConfig()
	withKeys.APIKeys = map[string]string{"k": testSecret}
	if _, err := New(withKeys, Deps{Media: newFakeMedia()}); err != nil {
		t.Fatalf("keys from config: %v", err)
	}
}
