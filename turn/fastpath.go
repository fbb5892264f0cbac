package turn

import (
	"net"
	"net/netip"
	"sync"

	"github.com/parleyhq/parley/turn/internal/relay"
)

// fastPath is the registry of the fast path (internal/relay's Alloc
// relays ChannelData without pion; its comment says why): it mirrors
// pion's allocations, fed synchronously by pion's event hooks, and links
// each to its relay socket and to the socket its client is reached
// through. Deletions are mirrored from inside pion, so nothing outlives
// its permission by more than a packet in flight.
type fastPath struct {
	// loops, when set, take over the relay sockets of clients served by
	// a loop.
	loops *relay.Loops
	// sendFailed counts fast-path frames a client socket refused.
	sendFailed relay.Counter

	mu     sync.RWMutex
	allocs map[fastKey]*mirrored
	// relays are allocations' relay sockets by advertised relay address,
	// from their creation until pion reports the allocation.
	relays map[netip.AddrPort]*relayPacketConn
	// udpOut is, per listening address, one of the UDP sockets bound to
	// it; any of them sends from the address the client talks to.
	udpOut map[netip.AddrPort]*clientPacketConn
	// streams are client TCP/TLS connections by their address pair.
	streams map[fastKey]*clientConn
}

// fastKey is pion's 5-tuple for an allocation: client address, server
// address, and whether the client came over TCP/TLS.
type fastKey struct {
	client, server netip.AddrPort
	stream         bool
}

// mirrored is one pion allocation in the mirror.
type mirrored struct {
	alloc *relay.Alloc
	relay *relayPacketConn // nil: TCP relay (RFC 6062) or unknown socket
	// refs counts pion allocations on this key. pion keeps one allocation
	// manager per listening socket, so two SO_REUSEPORT sockets could in
	// theory both hold the same 5-tuple; then the mirror cannot tell them
	// apart and stands aside until both are gone.
	refs int
}

func newFastPath(sendFailed relay.Counter) *fastPath {
	return &fastPath{
		sendFailed: sendFailed,
		allocs:     make(map[fastKey]*mirrored),
		relays:     make(map[netip.AddrPort]*relayPacketConn),
		udpOut:     make(map[netip.AddrPort]*clientPacketConn),
		streams:    make(map[fastKey]*clientConn),
	}
}

// addrPort converts a UDP or TCP address, with IPv4-mapped IPv6 addresses
// turned into IPv4, the form used for every key of the mirror.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch v := a.(type) {
	case *net.UDPAddr:
		ap = v.AddrPort()
	case *net.TCPAddr:
		ap = v.AddrPort()
	default:
		return netip.AddrPort{}, false
	}

	return unmapPort(ap), ap.IsValid()
}

func unmapPort(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}

	return ap
}

func keyOf(client, server net.Addr) (fastKey, bool) {
	c, ok1 := addrPort(client)
	s, ok2 := addrPort(server)
	_, stream := client.(*net.TCPAddr)

	return fastKey{client: c, server: s, stream: stream}, ok1 && ok2
}

// addUDPListener records a client socket to answer UDP clients from.
func (f *fastPath) addUDPListener(c *clientPacketConn) {
	ap, ok := addrPort(c.LocalAddr())
	if !ok {
		return
	}
	c.local = ap
	f.mu.Lock()
	if _, ok := f.udpOut[ap]; !ok {
		f.udpOut[ap] = c
	}
	f.mu.Unlock()
}

func (f *fastPath) addStream(c *clientConn) {
	key, ok := keyOf(c.Conn.RemoteAddr(), c.Conn.LocalAddr())
	if !ok {
		return
	}
	c.key = key
	f.mu.Lock()
	f.streams[key] = c
	f.mu.Unlock()
}

func (f *fastPath) removeStream(c *clientConn) {
	f.mu.Lock()
	if f.streams[c.key] == c {
		delete(f.streams, c.key)
	}
	f.mu.Unlock()
}

func (f *fastPath) addRelay(c *relayPacketConn, advertised net.Addr) {
	ap, ok := addrPort(advertised)
	if !ok {
		return
	}
	c.advertised = ap
	f.mu.Lock()
	f.relays[ap] = c
	f.mu.Unlock()
}

func (f *fastPath) removeRelay(c *relayPacketConn) {
	f.mu.Lock()
	if f.relays[c.advertised] == c {
		delete(f.relays, c.advertised)
	}
	f.mu.Unlock()
	c.fa.Store(nil)
}

// allocationCreated links a new pion allocation to its relay socket and
// to the socket its client is reached through.
func (f *fastPath) allocationCreated(src, dst, relayAddr net.Addr) {
	key, ok := keyOf(src, dst)
	if !ok {
		return
	}
	relayAP, _ := addrPort(relayAddr)
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.relays[relayAP]
	delete(f.relays, relayAP)
	if m, ok := f.allocs[key]; ok {
		m.refs++
		m.alloc.SetAmbiguous()
		if m.relay != nil {
			m.relay.fa.Store(nil)
		}

		return
	}
	cfg := relay.AllocConfig{SendFailed: f.sendFailed}
	if r != nil {
		cfg.Relay = r
	}
	loopOut := false
	var stream *clientConn
	if key.stream {
		if c := f.streams[key]; c != nil {
			stream, cfg.Out = c, c
			loopOut = c.stream != nil
		}
		cfg.BlockingOut = !loopOut
	} else if l := f.udpOut[key.server]; l != nil {
		cfg.Out = &udpClient{conn: l, to: key.client, addr: src}
		loopOut = l.raw != nil
	}
	a := relay.NewAlloc(cfg)
	if stream != nil {
		stream.fa.Store(a)
	}
	if r != nil && f.loops.Len() > 0 && loopOut {
		// pion starts reading the relay socket only after this event, so
		// it can still change hands. If it cannot, pion's goroutine keeps
		// reading it and relays through ReadFrom.
		_ = r.useLoop(f.loops, key.client)
	}
	f.allocs[key] = &mirrored{alloc: a, relay: r, refs: 1}
	if a.Relays() {
		r.fa.Store(a)
	}
}

func (f *fastPath) allocationDeleted(src, dst net.Addr) {
	key, ok := keyOf(src, dst)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.allocs[key]
	if m == nil {
		return
	}
	if m.refs--; m.refs > 0 {
		return
	}
	delete(f.allocs, key)
	if m.relay != nil {
		m.relay.fa.Store(nil)
	}
	if c := f.streams[key]; c != nil {
		c.fa.Store(nil)
	}
}

// lookup returns the mirror of the allocation on key, nil when unknown or
// ambiguous.
func (f *fastPath) lookup(key fastKey) *relay.Alloc {
	f.mu.RLock()
	m := f.allocs[key]
	f.mu.RUnlock()
	if m == nil || m.alloc.Ambiguous() {
		return nil
	}

	return m.alloc
}

func (f *fastPath) lookupAddrs(src, dst net.Addr) *relay.Alloc {
	key, ok := keyOf(src, dst)
	if !ok {
		return nil
	}
	f.mu.RLock()
	m := f.allocs[key]
	f.mu.RUnlock()
	if m == nil {
		return nil
	}

	return m.alloc
}

func (f *fastPath) permissionCreated(src, dst net.Addr, peer net.IP) {
	a := f.lookupAddrs(src, dst)
	ip, ok := netip.AddrFromSlice(peer)
	if a == nil || !ok {
		return
	}
	a.Permit(ip)
}

func (f *fastPath) permissionDeleted(src, dst net.Addr, peer net.IP) {
	a := f.lookupAddrs(src, dst)
	ip, ok := netip.AddrFromSlice(peer)
	if a == nil || !ok {
		return
	}
	a.Revoke(ip)
}

func (f *fastPath) channelCreated(src, dst, peer net.Addr, number uint16) {
	a := f.lookupAddrs(src, dst)
	p, ok := addrPort(peer)
	if a == nil || !ok {
		return
	}
	a.Bind(number, p)
}

func (f *fastPath) channelDeleted(src, dst, peer net.Addr, number uint16) {
	a := f.lookupAddrs(src, dst)
	p, ok := addrPort(peer)
	if a == nil || !ok {
		return
	}
	a.Unbind(number, p)
}

// udpClient reaches a UDP client through one of the listening sockets.
type udpClient struct {
	conn *clientPacketConn
	to   netip.AddrPort
	addr net.Addr // for a socket without WriteToUDPAddrPort (vnet)
}

func (u *udpClient) WriteChannelData(frame []byte) error {
	if u.conn.raw != nil {
		return u.conn.raw.SendTo(frame, u.to)
	}
	_, err := u.conn.PacketConn.WriteTo(frame, u.addr)

	return err
}
