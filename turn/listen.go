package turn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"syscall"

	"github.com/pion/transport/v5"
)

// Addrs are the addresses the server's sockets are bound to (useful when a
// configured port is 0).
type Addrs struct {
	UDP []net.Addr
	TCP []net.Addr
	TLS []net.Addr
}

// sockets are the raw listening sockets, opened by New so a busy port fails
// at start and so tests can learn ports before Run.
type sockets struct {
	udp []net.PacketConn
	tcp []net.Listener
	tls []net.Listener
}

func (s *sockets) close() {
	for _, c := range s.udp {
		_ = c.Close()
	}
	for _, l := range s.tcp {
		_ = l.Close()
	}
	for _, l := range s.tls {
		_ = l.Close()
	}
}

// family returns the network suffix ("4" or "6") for a host:port. An IPv6
// wildcard listens on IPv6 only (Go sets IPV6_V6ONLY for "udp6"/"tcp6"), so
// it can share a port number with the IPv4 wildcard.
func family(hostport string) (string, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", err
	}
	if ip.Is4() {
		return "4", nil
	}

	return "6", nil
}

// ipv6Unavailable reports an error from a host without IPv6, where the
// default IPv6 wildcard listeners are skipped rather than fatal.
func ipv6Unavailable(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

func (s *Server) openSockets(ctx context.Context, cfg Config, nw transport.Net) (*sockets, error) {
	if nw != nil {
		return openVirtualSockets(cfg, nw)
	}
	socks := &sockets{}
	fail := func(err error) (*sockets, error) {
		socks.close()

		return nil, err
	}
	perAddr := socketsPerAddress(cfg)
	for _, a := range cfg.ListenUDP {
		conns, err := listenUDP(ctx, a, perAddr)
		if err != nil {
			if fam, _ := family(a); fam == "6" && ipv6Unavailable(err) {
				s.log.Warn("turn: IPv6 listener skipped", "addr", a, "err", err)

				continue
			}

			return fail(fmt.Errorf("turn.listen_udp %s: %w", a, err))
		}
		for i, c := range conns {
			if s.loops.Len() == 0 { // off Linux: pion's goroutine reads it
				socks.udp = append(socks.udp, c)

				continue
			}
			raw, err := s.loops.Socket(c, i, s.metrics.droppedBacklogOut)
			if err != nil {
				for _, rest := range conns[i:] {
					_ = rest.Close()
				}

				return fail(fmt.Errorf("turn.listen_udp %s: %w", a, err))
			}
			socks.udp = append(socks.udp, raw)
		}
	}
	for _, a := range cfg.ListenTCP {
		l, err := listenTCP(ctx, a)
		if err != nil {
			if fam, _ := family(a); fam == "6" && ipv6Unavailable(err) {
				s.log.Warn("turn: IPv6 listener skipped", "addr", a, "err", err)

				continue
			}

			return fail(fmt.Errorf("turn.listen_tcp %s: %w", a, err))
		}
		socks.tcp = append(socks.tcp, l)
	}
	if cfg.TLSCert == "" {
		return socks, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return fail(fmt.Errorf("turn.tls_cert/turn.tls_key: %w", err))
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	for _, a := range cfg.ListenTLS {
		l, err := listenTCP(ctx, a)
		if err != nil {
			if fam, _ := family(a); fam == "6" && ipv6Unavailable(err) {
				s.log.Warn("turn: IPv6 listener skipped", "addr", a, "err", err)

				continue
			}

			return fail(fmt.Errorf("turn.listen_tls %s: %w", a, err))
		}
		socks.tls = append(socks.tls, tls.NewListener(l, tlsCfg))
	}

	return socks, nil
}

// socketsPerAddress is udp_sockets_per_address, 0 meaning one per CPU;
// one where the kernel does not spread a port over sockets (reuseport_*.go).
func socketsPerAddress(cfg Config) int {
	if reusePort() == nil {
		return 1
	}
	if cfg.UDPSocketsPerAddress > 0 {
		return cfg.UDPSocketsPerAddress
	}

	return runtime.NumCPU()
}

// eventLoops is event_loops, 0 meaning one per 4 CPUs.
func eventLoops(cfg Config) int {
	if cfg.EventLoops > 0 {
		return cfg.EventLoops
	}

	return max(1, runtime.NumCPU()/4)
}

// listenUDP opens n sockets on one address. With n > 1 they share the port
// through SO_REUSEPORT and the kernel hashes each client's 5-tuple to one
// of them, so each read loop serves a stable set of clients.
func listenUDP(ctx context.Context, addr string, n int) ([]net.PacketConn, error) {
	fam, err := family(addr)
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{}
	if n > 1 {
		lc.Control = reusePort()
	}
	first, err := lc.ListenPacket(ctx, "udp"+fam, addr)
	if err != nil {
		return nil, err
	}
	setBuffers(first, listenerSocketBuffer)
	conns := []net.PacketConn{first}
	// With port 0 the others must join the port the first one got.
	bound, ok := first.LocalAddr().(*net.UDPAddr)
	if !ok {
		_ = first.Close()

		return nil, fmt.Errorf("unexpected address type %T", first.LocalAddr())
	}
	host, _, _ := net.SplitHostPort(addr)
	same := net.JoinHostPort(host, strconv.Itoa(bound.Port))
	for len(conns) < n {
		c, err := lc.ListenPacket(ctx, "udp"+fam, same)
		if err == nil {
			setBuffers(c, listenerSocketBuffer)
		}
		if err != nil {
			for _, c := range conns {
				_ = c.Close()
			}

			return nil, fmt.Errorf("socket %d of %d: %w", len(conns)+1, n, err)
		}
		conns = append(conns, c)
	}

	return conns, nil
}

// Socket buffer sizes: one read loop serves many clients, and a burst (a
// video keyframe from many senders at once) must not overflow the default
// ~200 KiB buffer while the loop is descheduled. The kernel caps these at
// net.core.rmem_max / wmem_max.
const (
	listenerSocketBuffer = 4 << 20
	relaySocketBuffer    = 1 << 20
)

// setBuffers enlarges a UDP socket's buffers, best effort.
func setBuffers(c net.PacketConn, size int) {
	if b, ok := c.(interface {
		SetReadBuffer(int) error
		SetWriteBuffer(int) error
	}); ok {
		_ = b.SetReadBuffer(size)
		_ = b.SetWriteBuffer(size)
	}
}

// openVirtualSockets opens the UDP listeners on a virtual network.
func openVirtualSockets(cfg Config, nw transport.Net) (*sockets, error) {
	if len(cfg.ListenTCP) > 0 || (len(cfg.ListenTLS) > 0 && cfg.TLSCert != "") {
		return nil, errors.New("turn.listen_tcp: TCP and TLS listeners need the host network")
	}
	socks := &sockets{}
	for _, a := range cfg.ListenUDP {
		fam, err := family(a)
		if err != nil {
			return nil, fmt.Errorf("turn.listen_udp %s: %w", a, err)
		}
		c, err := nw.ListenPacket("udp"+fam, a)
		if err != nil {
			socks.close()

			return nil, fmt.Errorf("turn.listen_udp %s: %w", a, err)
		}
		socks.udp = append(socks.udp, c)
	}

	return socks, nil
}

func listenTCP(ctx context.Context, addr string) (net.Listener, error) {
	fam, err := family(addr)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig

	return lc.Listen(ctx, "tcp"+fam, addr)
}
