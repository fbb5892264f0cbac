package turn

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestICEServersAndCredentialsEndpoint(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	cfg.PublicHost = "turn.example.test"
	cfg.CredentialTTL = 90 * time.Minute
	ts := startServer(t, cfg)

	if ts.ICEServers("") != nil {
		t.Fatal("credential for an empty user")
	}
	ice := ts.ICEServers("dana")
	if len(ice) != 1 {
		t.Fatalf("ICEServers: %+v", ice)
	}
	udpPort := ts.Addrs().UDP[0].String()[len("127.0.0.1:"):]
	tcpPort := ts.Addrs().TCP[0].String()[len("127.0.0.1:"):]
	want := []string{
		"turn:turn.example.test:" + udpPort + "?transport=udp",
		"turn:turn.example.test:" + tcpPort + "?transport=tcp",
	}
	if strings.Join(ice[0].URLs, " ") != strings.Join(want, " ") {
		t.Fatalf("urls %v, want %v", ice[0].URLs, want)
	}
	if ice[0].TTL != 5400 || !strings.HasSuffix(ice[0].Username, ":dana") {
		t.Fatalf("credential %+v", ice[0])
	}

	h := ts.CredentialsHandler(func(r *http.Request) (string, bool) {
		if r.Header.Get("X-API-Key") != "k1" {
			return "", false
		}

		return "erin", true
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/turn/credentials", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("no key: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/turn/credentials", nil)
	req.Header.Set("X-API-Key", "k1")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("with key: %d %v", rec.Code, rec.Header())
	}
	var body struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
		TTL        int64    `json:"ttl"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.URLs) != 2 || body.TTL != 5400 || !strings.HasSuffix(body.Username, ":erin") {
		t.Fatalf("body %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	req = httptest.NewRequest(http.MethodDelete, "/turn/credentials", nil)
	req.Header.Set("X-API-Key", "k1")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d", rec.Code)
	}

	// The handed-out credential really allocates on this server.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := dialTURN(ctx, ts.opts("udp"), body.Username, body.Credential)
	if err != nil {
		t.Fatalf("endpoint credential refused: %v", err)
	}
	a.close()
}

func TestConfigICEServerWithoutServer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PublicIPv4 = "198.51.100.10"
	cfg.PublicIPv6 = "2001:db8::10"
	cfg.TLSCert, cfg.TLSKey = "c.pem", "k.pem"
	cfg.ListenTLS = []string{"0.0.0.0:443"}
	if _, err := cfg.ICEServer("u", time.Hour, time.Now()); err != ErrNoSecret {
		t.Fatalf("no secret: %v", err)
	}
	cfg.SharedSecrets = []string{testSecret}
	ice, err := cfg.ICEServer("u", time.Hour, time.Unix(1000, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := "turn:198.51.100.10:3478?transport=udp turn:198.51.100.10:3478?transport=tcp turns:198.51.100.10:443?transport=tcp " +
		"turn:[2001:db8::10]:3478?transport=udp turn:[2001:db8::10]:3478?transport=tcp turns:[2001:db8::10]:443?transport=tcp"
	if got := strings.Join(ice.URLs, " "); got != want {
		t.Fatalf("urls\n%s\nwant\n%s", got, want)
	}
	if ice.Username != "4600:u" || ice.TTL != 3600 {
		t.Fatalf("%+v", ice)
	}
}

func TestConfigValidateNamesKey(t *testing.T) {
	cases := []struct {
		key string
		mut func(*Config)
	}{
		{"turn.realm", func(c *Config) { c.Realm = "" }},
		{"turn.listen_udp", func(c *Config) { c.ListenUDP = []string{"example.com:3478"} }},
		{"turn.listen_tcp", func(c *Config) { c.ListenTCP = []string{"1.2.3.4"} }},
		{"turn.listen_tls", func(c *Config) { c.ListenTLS = []string{"1.2.3.4:99999"} }},
		{"turn.tls_cert", func(c *Config) { c.TLSCert = "x" }},
		{"turn.udp_sockets_per_address", func(c *Config) { c.UDPSocketsPerAddress = -1 }},
		{"turn.public_ipv4", func(c *Config) { c.PublicIPv4 = "::1" }},
		{"turn.public_ipv6", func(c *Config) { c.PublicIPv6 = "1.2.3.4" }},
		{"turn.relay_port_min", func(c *Config) { c.RelayPortMin = 0 }},
		{"turn.relay_port_max", func(c *Config) { c.RelayPortMax = 100 }},
		{"turn.credential_ttl", func(c *Config) { c.CredentialTTL = 0 }},
		{"turn.shared_secrets", func(c *Config) { c.SharedSecrets = []string{"short"} }},
		{"turn.users", func(c *Config) { c.Users = map[string]string{"17:bob": "pw"} }},
		{"turn.allowed_peer_cidrs", func(c *Config) { c.AllowedPeerCIDRs = []string{"10.0.0.0/33"} }},
		{"turn.denied_peer_cidrs", func(c *Config) { c.DeniedPeerCIDRs = []string{"x"} }},
		{"turn.max_allocations_per_user", func(c *Config) { c.MaxAllocationsPerUser = -1 }},
		{"turn.max_allocations", func(c *Config) { c.MaxAllocations = -1 }},
		{"turn.allocation_bandwidth", func(c *Config) { c.AllocationBandwidth = 100 }},
		{"turn.allocation_lifetime", func(c *Config) { c.AllocationLifetime = 2 * time.Hour }},
		{"turn.max_tcp_connections", func(c *Config) { c.MaxTCPConnections = -1 }},
		{"turn.max_tls_connections", func(c *Config) { c.MaxTLSConnections = -1 }},
		{"turn.max_tcp_connections_per_ip", func(c *Config) { c.MaxTCPConnectionsPerIP = -1 }},
		{"turn.max_tcp_unauthenticated_per_ip", func(c *Config) { c.MaxTCPUnauthenticatedPerIP = -1 }},
		{"turn.max_tcp_unauthenticated_per_ip", func(c *Config) { c.MaxTCPConnectionsPerIP = 4; c.MaxTCPUnauthenticatedPerIP = 5 }},
		{"turn.tcp_auth_timeout", func(c *Config) { c.TCPAuthTimeout = 0 }},
		{"turn.tcp_auth_timeout", func(c *Config) { c.TCPAuthTimeout = time.Hour }},
		{"turn.shared_secrets", func(c *Config) { c.Enabled = true; c.PublicIPv4 = "192.0.2.1" }},
		{"turn.public_ipv4", func(c *Config) { c.Enabled = true; c.SharedSecrets = []string{testSecret} }},
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.mut(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: err %v", c.key, err)
		}
	}
}
