package relay

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
)

// The fast path relays ChannelData (RFC 8656 section 12) without pion.
//
// pion/turn handles every relayed packet with fresh buffers: a new slice
// per ChannelData it sends to a client, two copies per TCP read, a request
// object per client datagram. Under relay load that garbage, and the
// collector chasing it, cost Parley about twice coturn's CPU. ChannelData
// is also the bulk of what a TURN server relays (browsers bind a channel
// per peer as soon as they can), so the data plane relays it itself: a
// datagram read into a buffer it owns, a 4-byte header written in front
// of it, one write. Nothing is allocated.
//
// The decisions stay pion's. An Alloc mirrors one pion allocation's
// channels and permissions, fed by pion's event hooks (the turn package's
// fastPath keeps the mirror of all of them), and relays only what pion
// would relay the same way: ChannelData from the client on a bound
// channel, and a peer's datagram on a bound channel with a live
// permission. Everything else goes to pion untouched, so a late or
// incomplete mirror can only cost speed, never change what is relayed.

// PeerSender sends a payload from an allocation's relay socket to a peer
// (the relay socket's bandwidth cap and counters apply).
type PeerSender interface {
	SendToPeer(p []byte, to netip.AddrPort)
}

// ClientWriter sends a ChannelData frame to an allocation's client. frame
// holds the 4-byte header and the payload; its capacity leaves room for
// the padding that stream transports need.
type ClientWriter interface {
	WriteChannelData(frame []byte) error
}

// Alloc is the fast path's mirror of one pion allocation.
type Alloc struct {
	relay PeerSender   // nil: TCP relay (RFC 6062) or unknown socket
	out   ClientWriter // nil: the client's socket is unknown
	// blockingOut: sending to the client can block (TLS, or TCP off an
	// event loop), so only the allocation's own goroutine relays to it,
	// never an event loop.
	blockingOut bool
	sendFailed  Counter
	// ambiguous: two pion allocations share this 5-tuple (pion keeps one
	// allocation manager per listening socket); the mirror cannot tell
	// them apart and stands aside.
	ambiguous atomic.Bool

	mu     sync.RWMutex
	byNum  map[uint16]netip.AddrPort
	byPeer map[netip.AddrPort]uint16
	perms  map[netip.Addr]struct{}
}

// AllocConfig describes the sockets of a new Alloc.
type AllocConfig struct {
	Relay PeerSender   // nil when the relay socket is unknown
	Out   ClientWriter // nil when the client's socket is unknown
	// BlockingOut: writing to the client may block.
	BlockingOut bool
	// SendFailed counts frames the client socket refused.
	SendFailed Counter
}

// NewAlloc mirrors an allocation with no channels or permissions yet.
func NewAlloc(c AllocConfig) *Alloc {
	return &Alloc{
		relay:       c.Relay,
		out:         c.Out,
		blockingOut: c.BlockingOut,
		sendFailed:  c.SendFailed,
		byNum:       make(map[uint16]netip.AddrPort),
		byPeer:      make(map[netip.AddrPort]uint16),
		perms:       make(map[netip.Addr]struct{}),
	}
}

// Relays reports whether both sockets are known, i.e. whether the
// allocation can relay anything.
func (a *Alloc) Relays() bool { return a.relay != nil && a.out != nil }

// BlockingOut reports whether relaying to the client may block.
func (a *Alloc) BlockingOut() bool { return a.blockingOut }

// SetAmbiguous makes the mirror stand aside for good.
func (a *Alloc) SetAmbiguous() { a.ambiguous.Store(true) }

// Ambiguous reports whether the mirror stands aside.
func (a *Alloc) Ambiguous() bool { return a.ambiguous.Load() }

// Permit mirrors a permission pion created for peer.
func (a *Alloc) Permit(peer netip.Addr) {
	a.mu.Lock()
	a.perms[peer.Unmap()] = struct{}{}
	a.mu.Unlock()
}

// Revoke mirrors a permission pion deleted.
func (a *Alloc) Revoke(peer netip.Addr) {
	a.mu.Lock()
	delete(a.perms, peer.Unmap())
	a.mu.Unlock()
}

// Bind mirrors a channel binding pion created.
func (a *Alloc) Bind(number uint16, peer netip.AddrPort) {
	a.mu.Lock()
	a.byNum[number] = peer
	a.byPeer[peer] = number
	a.mu.Unlock()
}

// Unbind mirrors a channel binding pion deleted.
func (a *Alloc) Unbind(number uint16, peer netip.AddrPort) {
	a.mu.Lock()
	if a.byNum[number] == peer {
		delete(a.byNum, number)
	}
	if a.byPeer[peer] == number {
		delete(a.byPeer, peer)
	}
	a.mu.Unlock()
}

// Known returns how many channels and permissions the mirror holds.
func (a *Alloc) Known() (channels, permissions int) {
	a.mu.RLock()
	defer a.mu.RUnlock()

	return len(a.byNum), len(a.perms)
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

// ToPeer relays ChannelData b from the client, reporting false when pion
// should handle it instead. A nil Alloc relays nothing.
func (a *Alloc) ToPeer(b []byte) bool {
	if a == nil || a.relay == nil || a.ambiguous.Load() {
		return false
	}
	num, payload, ok := channelData(b)
	if !ok {
		return false
	}
	a.mu.RLock()
	peer, ok := a.byNum[num]
	a.mu.RUnlock()
	if !ok {
		return false
	}
	a.relay.SendToPeer(payload, peer)

	return true
}

// ToClient relays a peer's datagram, already in frame[4:4+n], to the
// client as ChannelData, reporting false when pion should handle it.
func (a *Alloc) ToClient(frame []byte, n int, from netip.AddrPort) bool {
	if a.ambiguous.Load() {
		return false
	}
	a.mu.RLock()
	num, ok := a.byPeer[from]
	if ok {
		_, ok = a.perms[from.Addr()]
	}
	a.mu.RUnlock()
	if !ok {
		return false
	}
	binary.BigEndian.PutUint16(frame[0:2], num)
	binary.BigEndian.PutUint16(frame[2:4], uint16(n)) //nolint:gosec // n <= MaxPayload
	if err := a.out.WriteChannelData(frame[:4+n]); err != nil {
		a.sendFailed.Inc()
	}

	return true
}
