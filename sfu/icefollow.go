package sfu

import (
	"fmt"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// Firefox's ICE agent may nominate a second candidate pair after the
// first and keep sending on the first, while pion, as the controlled
// agent, moves to the later nomination because it ranks it higher (the
// two sides rank pairs differently when one sees the other's candidate
// as peer-reflexive; Mozilla bug 1034964). pion's packets then go to an
// address whose socket Firefox does not read: the connection looks up
// and the browser's media arrives, but none of the SFU's RTCP (key frame
// requests, TWCC feedback, receiver reports) reaches it, so its
// bandwidth estimate never rises and a subscriber who joins later waits
// forever for a key frame. Seen with Firefox on a machine with a
// loopback and a second local address.
//
// RFC 8445's regular nomination nominates one pair, so the first
// nomination is the one to keep. A nominationFollower moves pion back to
// it at the remote's next check on it (Firefox keeps checking both). A
// remote that renominates (libwebrtc's nomination attribute, which pion
// handles itself) is left alone, as is one that nominates once.
type nominationFollower struct {
	// first and renominates are touched only by handle, which pion
	// calls from its agent loop one request at a time.
	first       *ice.CandidatePair
	firstKey    string
	renominates bool

	mu       sync.Mutex
	selected string // pairKey of pion's selected pair, "" before one
}

func newNominationFollower() *nominationFollower { return &nominationFollower{} }

// settings returns a copy of se whose ICE agent reports binding requests
// to f. A nil f leaves se as it is.
func (f *nominationFollower) settings(se webrtc.SettingEngine) webrtc.SettingEngine {
	if f != nil {
		se.SetICEBindingRequestHandler(f.handle)
	}
	return se
}

// selectedChanged records the connection's selected pair, whichever
// side chose it (the ICE transport's OnSelectedCandidatePairChange).
func (f *nominationFollower) selectedChanged(p *webrtc.ICECandidatePair) {
	if f == nil || p == nil || p.Local == nil || p.Remote == nil {
		return
	}
	k := pairKey(p.Local.Protocol.String(), p.Local.Address, p.Local.Port, p.Remote.Address, p.Remote.Port)
	f.mu.Lock()
	f.selected = k
	f.mu.Unlock()
}

// handle is pion's binding request handler, called after pion's own
// handling of the request; true makes pair the selected pair.
func (f *nominationFollower) handle(m *stun.Message, local, remote ice.Candidate, pair *ice.CandidatePair) bool {
	if f.renominates || pair == nil || local == nil || remote == nil {
		return false
	}
	if m.Contains(ice.DefaultNominationAttribute) {
		f.renominates = true
		return false
	}
	if f.first == nil {
		if m.Contains(stun.AttrUseCandidate) {
			f.first = pair
			f.firstKey = pairKey(local.NetworkType().NetworkShort(), local.Address(), uint16(local.Port()),
				remote.Address(), uint16(remote.Port()))
		}
		return false
	}
	if pair != f.first {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.selected == "" || f.selected == f.firstKey {
		return false // not selected yet (pion selects it), or still selected
	}
	f.selected = f.firstKey // until pion's notification confirms it
	return true
}

// pairKey names a candidate pair by its transport and addresses, the same
// way from pion's ICE types and from the PeerConnection's.
func pairKey(proto, localAddr string, localPort uint16, remoteAddr string, remotePort uint16) string {
	return fmt.Sprintf("%s %s:%d %s:%d", proto, localAddr, localPort, remoteAddr, remotePort)
}
