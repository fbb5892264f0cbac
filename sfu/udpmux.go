package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/pion/ice/v4"
	pionlogging "github.com/pion/logging"
	"github.com/pion/transport/v5"

	"github.com/parleyhq/parley/internal/rawudp"
)

// portMux is the SFU's ICE UDP mux: one socket on the configured port for
// every allowed local address (so replies leave from the address the
// client sent to, which one wildcard socket cannot promise on a host
// with several addresses), demultiplexed by ICE ufrag.
//
// Unlike pion's MultiUDPMuxFromPort it does not need every address to be
// ready when the SFU starts. Right after a link comes up its IPv6
// addresses are tentative (duplicate address detection) and binding them
// fails with EADDRNOTAVAIL; such an address is skipped and tried again
// at the next gathering, as is any address that appears later. Each
// PeerConnection's gathering asks for the list, which rescans the
// interfaces (at most once per interfaceRescan, see liveNet), so new
// PeerConnections get candidates for whatever is ready by then.
type portMux struct {
	port    int
	net     transport.Net
	allowed func(iface string, ip netip.Addr) bool
	log     *slog.Logger
	pionLog pionlogging.LeveledLogger

	mu     sync.Mutex
	socks  map[netip.Addr]*udpSocket // by local address (with zone)
	listed []*net.UDPAddr            // bound addresses present at the last scan
	failed map[netip.Addr]string     // address -> last bind error, logged once
	closed bool

	corks corkSet // the raw sockets, for the writers' batches
}

// udpSocket is one bound address; with port 0 (tests) the kernel picks
// the port, so bound is what the socket got, not what was asked.
type udpSocket struct {
	mux   *ice.UDPMuxDefault
	bound *net.UDPAddr
}

var _ ice.UDPMux = (*portMux)(nil)

// newPortMux binds every allowed address that is ready. A busy port is
// an error (another program has it, which the operator must fix); an
// address that is not ready yet is not.
func newPortMux(port int, n transport.Net, allowed func(string, netip.Addr) bool, log *slog.Logger, pionLog pionlogging.LeveledLogger) (*portMux, error) {
	m := &portMux{
		port: port, net: n, allowed: allowed, log: log, pionLog: pionLog,
		socks:  map[netip.Addr]*udpSocket{},
		failed: map[netip.Addr]string{},
	}
	if err := m.scan(true); err != nil {
		_ = m.Close()
		return nil, err
	}
	if len(m.listed) == 0 {
		log.Warn("sfu: no local address is ready for UDP media yet; binding them as they appear", "udp_port", port)
	}
	return m, nil
}

// localAddr is one address of an up interface.
type localAddr struct {
	iface string
	ip    netip.Addr // with the interface as zone when link-local
}

// addrs lists the allowed addresses of the interfaces that are up, the
// same set pion's gathering would consider.
func (m *portMux) addrs() ([]localAddr, error) {
	ifs, err := m.net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []localAddr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			var ip net.IP
			switch v := a.(type) {
			case *net.IPNet:
				ip = v.IP
			case *net.IPAddr:
				ip = v.IP
			}
			addr, ok := netip.AddrFromSlice(ip)
			if !ok {
				continue
			}
			addr = addr.Unmap()
			if !usableForICE(addr) || !m.allowed(ifc.Name, addr) {
				continue
			}
			if addr.Is6() && addr.IsLinkLocalUnicast() {
				addr = addr.WithZone(ifc.Name)
			}
			out = append(out, localAddr{iface: ifc.Name, ip: addr})
		}
	}
	return out, nil
}

// usableForICE drops what RFC 8445 5.1.1.1 excludes from host
// candidates: IPv4-compatible IPv6 and site-local IPv6 addresses.
func usableForICE(a netip.Addr) bool {
	if a.Is4() {
		return true
	}
	b := a.As16()
	var zero [12]byte
	return [12]byte(b[:12]) != zero && !(b[0] == 0xfe && b[1]&0xc0 == 0xc0)
}

// scan binds the addresses that have no socket yet and records which
// bound addresses are present. At start (strict) a bind error other than
// "address not ready" fails; later it is logged once per address and
// the address is tried again next time.
func (m *portMux) scan(strict bool) error {
	addrs, err := m.addrs()
	if err != nil {
		if strict {
			return fmt.Errorf("sfu: list interfaces: %w", err)
		}
		m.log.Warn("sfu: list interfaces", "err", err)
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	listed := make([]*net.UDPAddr, 0, len(addrs))
	for _, a := range addrs {
		if m.socks[a.ip] == nil {
			if err := m.bind(a.ip, strict); err != nil {
				return err
			}
		}
		if sock := m.socks[a.ip]; sock != nil {
			listed = append(listed, sock.bound)
		}
	}
	m.listed = listed
	return nil
}

// bind opens the socket for one address; m.mu is held.
func (m *portMux) bind(ip netip.Addr, strict bool) error {
	ua := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(m.port)))
	conn, err := m.net.ListenUDP("udp", ua)
	if err != nil {
		notReady := errors.Is(err, syscall.EADDRNOTAVAIL)
		if strict && !notReady {
			return fmt.Errorf("sfu: listen udp port %d (sfu.udp_port): %w", m.port, err)
		}
		if m.failed[ip] != err.Error() {
			m.failed[ip] = err.Error()
			level := slog.LevelWarn
			if notReady {
				level = slog.LevelInfo // tentative IPv6: normal right after a link comes up
			}
			m.log.Log(context.Background(), level, "sfu: udp address not bound yet, will retry", "addr", ua.String(), "err", err)
		}
		return nil
	}
	bound, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		_ = conn.Close()
		return fmt.Errorf("sfu: udp socket on %s has local address %T", ua, conn.LocalAddr())
	}
	if _, retried := m.failed[ip]; retried || !strict {
		m.log.Info("sfu: udp address bound", "addr", bound.String())
	}
	delete(m.failed, ip)
	var pc net.PacketConn = conn
	if hc, ok := conn.(*net.UDPConn); ok {
		// A host socket (not vnet): media goes out by raw sendto, which
		// never parks the forwarder and keeps the runtime's sysmon idle
		// (see internal/rawudp and docs/benchmarks.md).
		raw := rawudp.Wrap(hc)
		m.corks.add(raw)
		pc = raw
	}
	m.socks[ip] = &udpSocket{
		mux:   ice.NewUDPMuxDefault(ice.UDPMuxParams{Logger: m.pionLog, UDPConn: pc, Net: m.net}),
		bound: bound,
	}
	return nil
}

// GetListenAddresses rescans and returns the bound addresses that are
// present on an up interface; pion calls it once per gathering.
func (m *portMux) GetListenAddresses() []net.Addr {
	_ = m.scan(false)
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]net.Addr, len(m.listed))
	for i, a := range m.listed {
		out[i] = a
	}
	return out
}

// GetConn returns the ufrag's connection on the socket bound to addr.
func (m *portMux) GetConn(ufrag string, addr net.Addr) (net.PacketConn, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("sfu: %T is not a udp address", addr)
	}
	m.mu.Lock()
	sock := m.socks[ua.AddrPort().Addr().Unmap()]
	m.mu.Unlock()
	if sock == nil {
		return nil, fmt.Errorf("sfu: no udp socket on %s", addr)
	}
	return sock.mux.GetConn(ufrag, sock.bound)
}

// RemoveConnByUfrag drops the ufrag's connections on every socket.
func (m *portMux) RemoveConnByUfrag(ufrag string) {
	for _, sock := range m.sockets() {
		sock.mux.RemoveConnByUfrag(ufrag)
	}
}

// Close closes every socket; later scans bind nothing. A socket whose
// address went away stays open until then, so the address works again
// if it comes back.
func (m *portMux) Close() error {
	m.mu.Lock()
	m.closed = true
	m.listed = nil
	m.mu.Unlock()
	var errs []error
	for _, sock := range m.sockets() {
		errs = append(errs, sock.mux.Close())
	}
	return errors.Join(errs...)
}

func (m *portMux) sockets() []*udpSocket {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*udpSocket, 0, len(m.socks))
	for _, sock := range m.socks {
		out = append(out, sock)
	}
	return out
}
