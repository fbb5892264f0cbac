package turn

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/parleyhq/parley/turn/internal/relay"
)

// The fast path relays ChannelData (RFC 8656 section 12) without pion.
//
// pion/turn handles every relayed packet with fresh buffers: a new slice
// per ChannelData it sends to a client, two copies per TCP read, a request
// object per client datagram. Under relay load that garbage, and the
// collector chasing it, cost Parley about twice coturn's CPU. ChannelData
// is also the bulk of what a TURN server relays (browsers bind a channel
// per peer as soon as they can), so the socket wrappers relay it
// themselves: a datagram read into a buffer the wrapper owns, a 4-byte
// header written in front of it, one write. Nothing is allocated.
//
// The decisions stay pion's. Allocations, permissions and channels are
// created, refreshed and expired by pion; the fast path keeps a mirror of
// them, fed by pion's event hooks, and only relays what that mirror says
// pion would relay the same way: ChannelData from a client on a bound
// channel, and a peer's datagram on a bound channel with a live
// permission. Everything else (Send and Data indications, unknown
// channels, a channel whose permission lapsed) goes to pion untouched, so
// the mirror being late or incomplete can only cost speed, never change
// what is relayed. Deletions are mirrored synchronously from inside pion,
// so nothing outlives its permission by more than a packet in flight.
type fastPath struct {
	// loops, when set, take over the relay sockets of clients served by
	// a loop.
	loops *relay.Loops

	mu     sync.RWMutex
	allocs map[fastKey]*fastAlloc
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

// fastAlloc mirrors one pion allocation.
type fastAlloc struct {
	relay *relayPacketConn // nil: TCP relay (RFC 6062) or unknown socket
	out   clientWriter     // nil: the client's socket is unknown
	// blockingOut: sending to the client can block (TLS, or TCP off the
	// event loop), so only the allocation's own goroutine relays to it,
	// never the event loop.
	blockingOut bool
	// refs counts pion allocations on this key. pion keeps one allocation
	// manager per listening socket, so two SO_REUSEPORT sockets could in
	// theory both hold the same 5-tuple; then the mirror cannot tell them
	// apart and stands aside until both are gone.
	refs      int
	ambiguous atomic.Bool

	mu     sync.RWMutex
	byNum  map[uint16]netip.AddrPort
	byPeer map[netip.AddrPort]uint16
	perms  map[netip.Addr]struct{}
}

// clientWriter sends a ChannelData frame to an allocation's client. frame
// holds the 4-byte header and the payload; its capacity leaves room for
// the padding that stream transports need.
type clientWriter interface {
	writeChannelData(frame []byte) error
}

func newFastPath() *fastPath {
	return &fastPath{
		allocs:  make(map[fastKey]*fastAlloc),
		relays:  make(map[netip.AddrPort]*relayPacketConn),
		udpOut:  make(map[netip.AddrPort]*clientPacketConn),
		streams: make(map[fastKey]*clientConn),
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
func (f *fastPath) allocationCreated(src, dst, relay net.Addr) {
	key, ok := keyOf(src, dst)
	if !ok {
		return
	}
	relayAP, _ := addrPort(relay)
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.relays[relayAP]
	delete(f.relays, relayAP)
	if fa, ok := f.allocs[key]; ok {
		fa.refs++
		fa.ambiguous.Store(true)
		if fa.relay != nil {
			fa.relay.fa.Store(nil)
		}

		return
	}
	fa := &fastAlloc{
		relay:  r,
		refs:   1,
		byNum:  make(map[uint16]netip.AddrPort),
		byPeer: make(map[netip.AddrPort]uint16),
		perms:  make(map[netip.Addr]struct{}),
	}
	loopOut := false
	if key.stream {
		if c := f.streams[key]; c != nil {
			fa.out = c
			c.fa.Store(fa)
			loopOut = c.stream != nil
		}
		fa.blockingOut = !loopOut
	} else if l := f.udpOut[key.server]; l != nil {
		fa.out = &udpClient{conn: l, to: key.client, addr: src}
		loopOut = l.raw != nil
	}
	if r != nil && f.loops.Len() > 0 && loopOut {
		// pion starts reading the relay socket only after this event, so
		// it can still change hands. If it cannot, pion's goroutine keeps
		// reading it and relays through ReadFrom.
		_ = r.useLoop(f.loops, key.client)
	}
	f.allocs[key] = fa
	if r != nil && fa.out != nil {
		r.fa.Store(fa)
	}
}

func (f *fastPath) allocationDeleted(src, dst net.Addr) {
	key, ok := keyOf(src, dst)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fa := f.allocs[key]
	if fa == nil {
		return
	}
	if fa.refs--; fa.refs > 0 {
		return
	}
	delete(f.allocs, key)
	if fa.relay != nil {
		fa.relay.fa.Store(nil)
	}
	if c := f.streams[key]; c != nil {
		c.fa.Store(nil)
	}
}

func (f *fastPath) lookup(key fastKey) *fastAlloc {
	f.mu.RLock()
	fa := f.allocs[key]
	f.mu.RUnlock()
	if fa == nil || fa.ambiguous.Load() {
		return nil
	}

	return fa
}

func (f *fastPath) lookupAddrs(src, dst net.Addr) *fastAlloc {
	key, ok := keyOf(src, dst)
	if !ok {
		return nil
	}
	f.mu.RLock()
	fa := f.allocs[key]
	f.mu.RUnlock()

	return fa
}

func (f *fastPath) permissionCreated(src, dst net.Addr, peer net.IP) {
	fa := f.lookupAddrs(src, dst)
	ip, ok := netip.AddrFromSlice(peer)
	if fa == nil || !ok {
		return
	}
	fa.mu.Lock()
	fa.perms[ip.Unmap()] = struct{}{}
	fa.mu.Unlock()
}

func (f *fastPath) permissionDeleted(src, dst net.Addr, peer net.IP) {
	fa := f.lookupAddrs(src, dst)
	ip, ok := netip.AddrFromSlice(peer)
	if fa == nil || !ok {
		return
	}
	fa.mu.Lock()
	delete(fa.perms, ip.Unmap())
	fa.mu.Unlock()
}

func (f *fastPath) channelCreated(src, dst, peer net.Addr, number uint16) {
	fa := f.lookupAddrs(src, dst)
	p, ok := addrPort(peer)
	if fa == nil || !ok {
		return
	}
	fa.mu.Lock()
	fa.byNum[number] = p
	fa.byPeer[p] = number
	fa.mu.Unlock()
}

func (f *fastPath) channelDeleted(src, dst, peer net.Addr, number uint16) {
	fa := f.lookupAddrs(src, dst)
	p, ok := addrPort(peer)
	if fa == nil || !ok {
		return
	}
	fa.mu.Lock()
	if fa.byNum[number] == p {
		delete(fa.byNum, number)
	}
	if fa.byPeer[p] == number {
		delete(fa.byPeer, p)
	}
	fa.mu.Unlock()
}

// channelData splits a ChannelData message (channel numbers 0x4000 to
// 0x7fff, as pion accepts them) into its number and payload.
func channelData(b []byte) (uint16, []byte, bool) {
	if len(b) < 4 || b[0]&0xc0 != 0x40 {
		return 0, nil, false
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length > len(b)-4 {
		return 0, nil, false
	}

	return binary.BigEndian.Uint16(b[0:2]), b[4 : 4+length], true
}

// toPeer relays ChannelData from the client of fa, reporting false when
// pion should handle it instead.
func (fa *fastAlloc) toPeer(b []byte) bool {
	if fa == nil || fa.relay == nil || fa.ambiguous.Load() {
		return false
	}
	num, payload, ok := channelData(b)
	if !ok {
		return false
	}
	fa.mu.RLock()
	peer, ok := fa.byNum[num]
	fa.mu.RUnlock()
	if !ok {
		return false
	}
	fa.relay.sendToPeer(payload, peer)

	return true
}

// toClient relays a peer's datagram, already in frame[4:4+n], to the
// client as ChannelData, reporting false when pion should handle it.
func (fa *fastAlloc) toClient(frame []byte, n int, from netip.AddrPort) bool {
	if fa.ambiguous.Load() {
		return false
	}
	fa.mu.RLock()
	num, ok := fa.byPeer[from]
	if ok {
		_, ok = fa.perms[from.Addr()]
	}
	fa.mu.RUnlock()
	if !ok {
		return false
	}
	binary.BigEndian.PutUint16(frame[0:2], num)
	binary.BigEndian.PutUint16(frame[2:4], uint16(n)) //nolint:gosec // n <= maxRelayPayload
	if err := fa.out.writeChannelData(frame[:4+n]); err != nil {
		fa.relay.m.droppedSendFailed.Inc()
	}

	return true
}

// udpClient reaches a UDP client through one of the listening sockets.
type udpClient struct {
	conn *clientPacketConn
	to   netip.AddrPort
	addr net.Addr // for a socket without WriteToUDPAddrPort (vnet)
}

func (u *udpClient) writeChannelData(frame []byte) error {
	if u.conn.raw != nil {
		return u.conn.raw.SendTo(frame, u.to)
	}
	_, err := u.conn.PacketConn.WriteTo(frame, u.addr)

	return err
}
