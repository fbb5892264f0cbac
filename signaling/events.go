package signaling

import (
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// maxPendingEvents bounds SFU events waiting for the writer. The SFU
// produces a handful per negotiation; hitting this means the client is
// stuck, and it is dropped like any slow consumer.
const maxPendingEvents = 1024

type eventKind int

const (
	evOffer eventKind = iota
	evCandidate
	evTrackPublished
	evTrackUnpublished
	evConnState
)

type peerEvent struct {
	kind   eventKind
	sdp    webrtc.SessionDescription
	target sfu.Target
	cand   *webrtc.ICECandidateInit
	track  sfu.TrackInfo
	state  webrtc.PeerConnectionState
}

// peerEvents implements sfu.PeerEvents for one connection. The SFU calls
// it from pion's goroutines, so every method only appends to a queue; the
// connection's writer does the work.
type peerEvents struct{ c *conn }

var _ sfu.PeerEvents = peerEvents{}

func (e peerEvents) SubscriberOffer(offer webrtc.SessionDescription) {
	e.c.pushEvent(peerEvent{kind: evOffer, sdp: offer})
}

func (e peerEvents) ICECandidate(target sfu.Target, cand *webrtc.ICECandidateInit) {
	if cand == nil {
		// End of gathering: the protocol has no message for it.
		return
	}
	e.c.pushEvent(peerEvent{kind: evCandidate, target: target, cand: cand})
}

func (e peerEvents) TrackPublished(t sfu.TrackInfo) {
	e.c.pushEvent(peerEvent{kind: evTrackPublished, track: t})
}

func (e peerEvents) TrackUnpublished(t sfu.TrackInfo) {
	e.c.pushEvent(peerEvent{kind: evTrackUnpublished, track: t})
}

func (e peerEvents) ConnectionState(target sfu.Target, state webrtc.PeerConnectionState) {
	e.c.pushEvent(peerEvent{kind: evConnState, target: target, state: state})
}

func (c *conn) pushEvent(ev peerEvent) {
	if c.closing.Load() {
		return
	}
	c.evMu.Lock()
	if len(c.events) >= maxPendingEvents {
		c.evMu.Unlock()
		c.dropSlow()
		return
	}
	c.events = append(c.events, ev)
	ready := c.ready
	c.evMu.Unlock()
	if ready {
		c.signalEvents()
	}
}

func (c *conn) signalEvents() {
	select {
	case c.evSignal <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// markReady releases queued SFU events once "joined" has been queued.
func (c *conn) markReady() {
	c.evMu.Lock()
	c.ready = true
	c.evMu.Unlock()
	c.signalEvents()
}

func (c *conn) isReady() bool {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	return c.ready
}

// handleEvents runs on the writer goroutine.
func (c *conn) handleEvents() error {
	c.evMu.Lock()
	evs := c.events
	c.events = nil
	c.evMu.Unlock()
	cs := c.call
	for _, ev := range evs {
		if c.closing.Load() {
			return nil
		}
		switch ev.kind {
		case evOffer:
			if err := c.write(proto.Encode(proto.TypeOffer, "", proto.SDPBody{SDP: ev.sdp.SDP})); err != nil {
				return err
			}
		case evCandidate:
			body := proto.CandidateBody{Target: ev.target.String(), Candidate: &proto.CandidateInit{
				Candidate:        ev.cand.Candidate,
				SDPMid:           ev.cand.SDPMid,
				SDPMLineIndex:    ev.cand.SDPMLineIndex,
				UsernameFragment: ev.cand.UsernameFragment,
			}}
			if err := c.write(proto.Encode(proto.TypeCandidate, "", body)); err != nil {
				return err
			}
		case evTrackPublished:
			c.s.dir.TrackPublished(cs.p, ev.track)
		case evTrackUnpublished:
			c.s.dir.TrackUnpublished(cs.p, ev.track)
		case evConnState:
			c.log.Debug("peer connection state", "target", ev.target.String(), "state", ev.state.String())
		}
	}
	return nil
}
