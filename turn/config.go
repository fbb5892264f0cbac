// Package turn is Parley's embedded TURN server (RFC 5766/8656 with RFC 6062
// TCP relays and RFC 6156 IPv6), built on pion/turn v5. It adds what a server
// on the public Internet needs around the protocol engine: SO_REUSEPORT UDP
// listeners, TURN REST credentials with secret rotation, a peer-address policy
// that never relays into loopback or private ranges unless the operator allows
// them, per-user and total allocation quotas, a per-allocation bandwidth cap,
// Prometheus metrics and a self-test. It imports no other Parley package so
// another program can embed it.
package turn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Config is the "turn" section of Parley's configuration file.
type Config struct {
	// Enabled starts the TURN server. Off by default because it needs a
	// public address and a shared secret to be useful and safe.
	Enabled bool `yaml:"enabled"`
	// Realm is the long-term credential realm sent to clients.
	Realm string `yaml:"realm"`

	// ListenUDP, ListenTCP and ListenTLS are host:port addresses. IPv4 and
	// IPv6 addresses may be mixed; an IPv6 wildcard only takes IPv6 so it can
	// sit beside the IPv4 wildcard on the same port. ListenTLS is used only
	// when TLSCert and TLSKey are set (port 443 works if the process may bind it).
	ListenUDP []string `yaml:"listen_udp"`
	ListenTCP []string `yaml:"listen_tcp"`
	ListenTLS []string `yaml:"listen_tls"`
	TLSCert   string   `yaml:"tls_cert"`
	TLSKey    string   `yaml:"tls_key"`
	// UDPSocketsPerAddress opens this many SO_REUSEPORT sockets per UDP
	// address so the kernel spreads clients across them. 0 means one per
	// CPU.
	UDPSocketsPerAddress int `yaml:"udp_sockets_per_address"`
	// EventLoops is how many goroutines read the sockets (each through
	// its own epoll set): socket i of an address goes to loop i mod
	// EventLoops, allocations are spread by client port. One loop relays
	// a few hundred thousand packets per second; every extra loop costs
	// wake-ups at lower rates (two loops doubled the CPU per packet of the
	// benchmark in docs/benchmarks.md). 0 means one per 4 CPUs, at least
	// one.
	EventLoops int `yaml:"event_loops"`

	// PublicIPv4 and PublicIPv6 are the addresses advertised to clients as
	// relay addresses (XOR-RELAYED-ADDRESS). An allocation of a family whose
	// public address is empty is refused.
	PublicIPv4 string `yaml:"public_ipv4"`
	PublicIPv6 string `yaml:"public_ipv6"`
	// PublicHost is the name put in turn:/turns: URLs handed to clients
	// (TLS clients check the certificate against it). Empty means the public IPs.
	PublicHost string `yaml:"public_host"`
	// RelayBindIPv4 and RelayBindIPv6 are the local addresses relay sockets
	// bind to (behind 1:1 NAT this differs from the public address).
	RelayBindIPv4 string `yaml:"relay_bind_ipv4"`
	RelayBindIPv6 string `yaml:"relay_bind_ipv6"`
	RelayPortMin  int    `yaml:"relay_port_min"`
	RelayPortMax  int    `yaml:"relay_port_max"`

	// SharedSecrets are TURN REST (coturn use-auth-secret) secrets. New
	// credentials are signed with the first; all are accepted, so a secret
	// can be rotated by prepending the new one and removing the old one after
	// CredentialTTL.
	SharedSecrets []string `yaml:"shared_secrets"`
	// CredentialTTL is the lifetime of issued REST credentials. TURN
	// re-checks the credential on every refresh, so it must outlast the
	// longest call.
	CredentialTTL time.Duration `yaml:"credential_ttl"`
	// Users are optional static long-term users (name -> password).
	Users map[string]string `yaml:"users"`

	// AllowedPeerCIDRs are ranges the relay may reach even though they are
	// special-purpose (for example a LAN media server). They win over the
	// built-in deny list. DeniedPeerCIDRs are extra ranges to refuse.
	AllowedPeerCIDRs []string `yaml:"allowed_peer_cidrs"`
	DeniedPeerCIDRs  []string `yaml:"denied_peer_cidrs"`

	// MaxAllocationsPerUser and MaxAllocations answer 486 (Allocation Quota
	// Reached) beyond their limit. 0 means unlimited.
	MaxAllocationsPerUser int `yaml:"max_allocations_per_user"`
	MaxAllocations        int `yaml:"max_allocations"`
	// AllocationBandwidth caps each allocation's relayed bytes per second in
	// each direction (UDP packets over the cap are dropped and counted, TCP
	// relays are slowed). 0 means unlimited.
	AllocationBandwidth int `yaml:"allocation_bandwidth"`
	// AllocationLifetime is the default lifetime of an allocation that a
	// client does not refresh.
	AllocationLifetime time.Duration `yaml:"allocation_lifetime"`
	// MaxTCPConnections and MaxTLSConnections bound concurrent client
	// connections on the plain-TCP and the TLS listeners: two separate
	// pools, so a flood on one cannot lock clients out of the other. Each
	// connection costs a goroutine and buffers before it authenticates.
	// When a pool is full, a newcomer takes the place of its oldest
	// unauthenticated connection; only if there is none is it refused.
	// 0 means unlimited.
	MaxTCPConnections int `yaml:"max_tcp_connections"`
	MaxTLSConnections int `yaml:"max_tls_connections"`
	// MaxTCPConnectionsPerIP bounds one client address's connections in
	// each pool (IPv6 addresses count by /64); MaxTCPUnauthenticatedPerIP
	// bounds those of them that have not yet authenticated. 0 means
	// unlimited.
	MaxTCPConnectionsPerIP     int `yaml:"max_tcp_connections_per_ip"`
	MaxTCPUnauthenticatedPerIP int `yaml:"max_tcp_unauthenticated_per_ip"`
	// TCPAuthTimeout is how long a TCP or TLS connection may stay open
	// (TLS handshake included) before a request of it has authenticated;
	// then it is closed. A real client authenticates within two round trips.
	TCPAuthTimeout time.Duration `yaml:"tcp_auth_timeout"`
	// UnallocatedAnswerRate caps the answers per second sent over UDP to
	// one source address that holds no allocation (sourcebudget.go): the
	// bound on what a forged source can make this server send to a
	// victim. Loopback sources are exempt. 0 means unlimited.
	UnallocatedAnswerRate int `yaml:"unallocated_answer_rate"`
}

// DefaultConfig returns a disabled server listening on the standard ports.
func DefaultConfig() Config {
	return Config{
		Enabled:              false,
		Realm:                "parley",
		ListenUDP:            []string{"0.0.0.0:3478", "[::]:3478"},
		ListenTCP:            []string{"0.0.0.0:3478", "[::]:3478"},
		ListenTLS:            []string{"0.0.0.0:5349", "[::]:5349"},
		UDPSocketsPerAddress: 0,
		EventLoops:           0,
		RelayBindIPv4:        "0.0.0.0",
		RelayBindIPv6:        "::",
		RelayPortMin:         49152,
		RelayPortMax:         65535,
		CredentialTTL:        12 * time.Hour,
		// A browser allocates per TURN URL, per network interface and per
		// peer connection, so a few calls in a few tabs reach a dozen.
		MaxAllocationsPerUser: 32,
		MaxAllocations:        10000,
		AllocationBandwidth:   0,
		AllocationLifetime:    10 * time.Minute,
		MaxTCPConnections:     10000,
		MaxTLSConnections:     10000,
		// An office behind one NAT shares an address: a few connections
		// per user in a call, each TURN URL and peer connection its own.
		MaxTCPConnectionsPerIP: 256,
		// Pending connections: a browser opens one per TURN URL at a
		// call's start and authenticates within a round trip or two.
		MaxTCPUnauthenticatedPerIP: 16,
		TCPAuthTimeout:             10 * time.Second,
		UnallocatedAnswerRate:      50,
	}
}

// Validate reports the first invalid setting, naming its key.
func (c Config) Validate() error {
	if c.Realm == "" {
		return errors.New("turn.realm: must not be empty")
	}
	lists := []struct {
		key   string
		addrs []string
	}{{"turn.listen_udp", c.ListenUDP}, {"turn.listen_tcp", c.ListenTCP}, {"turn.listen_tls", c.ListenTLS}}
	for _, l := range lists {
		for _, a := range l.addrs {
			if err := checkHostPort(a); err != nil {
				return fmt.Errorf("%s: %q: %w", l.key, a, err)
			}
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("turn.tls_cert and turn.tls_key: set both or neither")
	}
	if c.EventLoops < 0 || c.EventLoops > 256 {
		return fmt.Errorf("turn.event_loops: %d not in 0..256", c.EventLoops)
	}
	if c.UDPSocketsPerAddress < 0 || c.UDPSocketsPerAddress > 256 {
		return fmt.Errorf("turn.udp_sockets_per_address: %d not in 0..256", c.UDPSocketsPerAddress)
	}
	if err := checkIP(c.PublicIPv4, ipv4); err != nil {
		return fmt.Errorf("turn.public_ipv4: %w", err)
	}
	if err := checkIP(c.PublicIPv6, ipv6); err != nil {
		return fmt.Errorf("turn.public_ipv6: %w", err)
	}
	if err := checkIP(c.RelayBindIPv4, ipv4); err != nil {
		return fmt.Errorf("turn.relay_bind_ipv4: %w", err)
	}
	if err := checkIP(c.RelayBindIPv6, ipv6); err != nil {
		return fmt.Errorf("turn.relay_bind_ipv6: %w", err)
	}
	if c.RelayPortMin < 1 || c.RelayPortMin > 65535 {
		return fmt.Errorf("turn.relay_port_min: %d not in 1..65535", c.RelayPortMin)
	}
	if c.RelayPortMax < c.RelayPortMin || c.RelayPortMax > 65535 {
		return fmt.Errorf("turn.relay_port_max: %d not in relay_port_min..65535", c.RelayPortMax)
	}
	if c.CredentialTTL <= 0 {
		return fmt.Errorf("turn.credential_ttl: %s must be positive", c.CredentialTTL)
	}
	for i, s := range c.SharedSecrets {
		if len(s) < 16 {
			return fmt.Errorf("turn.shared_secrets[%d]: shorter than 16 characters", i)
		}
	}
	for name, pw := range c.Users {
		if name == "" || pw == "" {
			return errors.New("turn.users: empty user name or password")
		}
		if _, _, ok := parseRESTUsername(name); ok {
			return fmt.Errorf("turn.users: %q looks like a REST username (<expiry>:<user>)", name)
		}
	}
	if _, err := parseCIDRs(c.AllowedPeerCIDRs); err != nil {
		return fmt.Errorf("turn.allowed_peer_cidrs: %w", err)
	}
	if _, err := parseCIDRs(c.DeniedPeerCIDRs); err != nil {
		return fmt.Errorf("turn.denied_peer_cidrs: %w", err)
	}
	if c.MaxAllocationsPerUser < 0 {
		return errors.New("turn.max_allocations_per_user: must not be negative")
	}
	if c.MaxAllocations < 0 {
		return errors.New("turn.max_allocations: must not be negative")
	}
	if c.UnallocatedAnswerRate < 0 {
		return errors.New("turn.unallocated_answer_rate: must not be negative")
	}
	if c.AllocationBandwidth < 0 {
		return errors.New("turn.allocation_bandwidth: must not be negative")
	}
	if c.AllocationBandwidth > 0 && c.AllocationBandwidth < 2048 {
		return fmt.Errorf("turn.allocation_bandwidth: %d bytes/s is below one packet; use 0 for unlimited", c.AllocationBandwidth)
	}
	if c.AllocationLifetime < time.Second || c.AllocationLifetime > time.Hour {
		return fmt.Errorf("turn.allocation_lifetime: %s not in 1s..1h", c.AllocationLifetime)
	}
	if err := c.validateConnLimits(); err != nil {
		return err
	}
	if c.Enabled {
		return c.validateEnabled()
	}

	return nil
}

// validateConnLimits checks the TCP/TLS listener limits (connbudget.go).
func (c Config) validateConnLimits() error {
	for _, v := range []struct {
		key string
		n   int
	}{
		{"turn.max_tcp_connections", c.MaxTCPConnections},
		{"turn.max_tls_connections", c.MaxTLSConnections},
		{"turn.max_tcp_connections_per_ip", c.MaxTCPConnectionsPerIP},
		{"turn.max_tcp_unauthenticated_per_ip", c.MaxTCPUnauthenticatedPerIP},
	} {
		if v.n < 0 {
			return fmt.Errorf("%s: %d must not be negative (0 means unlimited)", v.key, v.n)
		}
	}
	if c.MaxTCPConnectionsPerIP > 0 && c.MaxTCPUnauthenticatedPerIP > c.MaxTCPConnectionsPerIP {
		return fmt.Errorf("turn.max_tcp_unauthenticated_per_ip: %d exceeds max_tcp_connections_per_ip %d",
			c.MaxTCPUnauthenticatedPerIP, c.MaxTCPConnectionsPerIP)
	}
	if c.TCPAuthTimeout < time.Second || c.TCPAuthTimeout > 5*time.Minute {
		return fmt.Errorf("turn.tcp_auth_timeout: %s not in 1s..5m", c.TCPAuthTimeout)
	}

	return nil
}

// validateEnabled checks what a running server needs beyond well-formed values.
func (c Config) validateEnabled() error {
	if len(c.SharedSecrets) == 0 && len(c.Users) == 0 {
		return errors.New("turn.shared_secrets: set at least one secret (or turn.users) when turn.enabled")
	}
	if c.PublicIPv4 == "" && c.PublicIPv6 == "" {
		return errors.New("turn.public_ipv4: set the public relay address (or turn.public_ipv6) when turn.enabled")
	}
	if len(c.ListenUDP) == 0 && len(c.ListenTCP) == 0 && (len(c.ListenTLS) == 0 || c.TLSCert == "") {
		return errors.New("turn.listen_udp: no listener configured")
	}

	return nil
}

func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return err
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("host must be an IP address: %w", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port %q", port)
	}

	return nil
}

type ipFamily int

const (
	ipv4 ipFamily = 4
	ipv6 ipFamily = 6
)

// checkIP accepts "" or an address of the given family.
func checkIP(s string, fam ipFamily) error {
	if s == "" {
		return nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return err
	}
	if ip.Is4() != (fam == ipv4) || ip.Is4In6() {
		return fmt.Errorf("%q is not an IPv%d address", s, fam)
	}

	return nil
}
