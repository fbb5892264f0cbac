package signaling

import (
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// maxPendingEvents bounds SFU events waiting to be applied. The SFU
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
	evSpeakers
	evActiveLayers
	evQuality
)

type peerEvent struct {
	kind   eventKind
	sdp    webrtc.SessionDescription
	target sfu.Target
	cand   *webrtc.ICECandidateInit
	track  sfu.TrackInfo
	state  webrtc.PeerConnectionState
	// speakers is the room's speaker change (evSpeakers).
	speakers sfu.SpeakerUpdate
	// rids are the layers of track to keep sending (evActiveLayers).
	rids []string
	// quality is the room's connection-quality levels (evQuality),
	// shared with the room's other sessions: read only.
	quality map[string]sfu.Quality
}

// peerEvents implements sfu.PeerEvents for one call session. The SFU
// calls it from pion's goroutines, so every method only queues.
type peerEvents struct{ q *eventQueue }

var _ sfu.PeerEvents = peerEvents{}

func (e peerEvents) SubscriberOffer(offer webrtc.SessionDescription) {
	e.q.push(peerEvent{kind: evOffer, sdp: offer})
}

func (e peerEvents) ICECandidate(target sfu.Target, cand *webrtc.ICECandidateInit) {
	if cand == nil {
		// End of gathering: the protocol has no message for it.
		return
	}
	e.q.push(peerEvent{kind: evCandidate, target: target, cand: cand})
}

func (e peerEvents) TrackPublished(t sfu.TrackInfo) {
	e.q.push(peerEvent{kind: evTrackPublished, track: t})
}

func (e peerEvents) TrackUnpublished(t sfu.TrackInfo) {
	e.q.push(peerEvent{kind: evTrackUnpublished, track: t})
}

func (e peerEvents) ConnectionState(target sfu.Target, state webrtc.PeerConnectionState) {
	e.q.push(peerEvent{kind: evConnState, target: target, state: state})
}

// eventQueue hands a call session's SFU events, in order, to apply. It
// holds them until start (so that a client never sees an offer before
// its "joined"), then runs apply on a goroutine of its own that exists
// only while events wait, and that close waits for. Neither pion's
// goroutines (which must not block on the room) nor the connection's
// writer (which only writes) apply anything.
type eventQueue struct {
	apply    func(peerEvent)
	overflow func() // the session cannot keep up: drop it

	mu      sync.Mutex
	events  []peerEvent
	started bool
	running bool // a drain goroutine is on its way
	closed  bool
	wg      sync.WaitGroup
}

func newEventQueue(apply func(peerEvent), overflow func()) *eventQueue {
	return &eventQueue{apply: apply, overflow: overflow}
}

func (q *eventQueue) push(ev peerEvent) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	if len(q.events) >= maxPendingEvents {
		q.mu.Unlock()
		q.overflow()
		return
	}
	q.events = append(q.events, ev)
	q.kickLocked()
	q.mu.Unlock()
}

// start lets queued and later events be applied.
func (q *eventQueue) start() {
	q.mu.Lock()
	q.started = true
	q.kickLocked()
	q.mu.Unlock()
}

func (q *eventQueue) kickLocked() {
	if !q.started || q.running || q.closed || len(q.events) == 0 {
		return
	}
	q.running = true
	q.wg.Add(1)
	go q.drain()
}

func (q *eventQueue) drain() {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		evs := q.events
		q.events = nil
		if len(evs) == 0 || q.closed {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		for _, ev := range evs {
			q.apply(ev)
		}
	}
}

// close drops what is still queued and waits for a running apply.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.events = nil
	q.mu.Unlock()
	q.wg.Wait()
}

// apply handles one SFU event: negotiation messages go to the client,
// track changes to the room directory.
func (cs *callSession) apply(ev peerEvent) {
	out := cs.ss.out
	switch ev.kind {
	case evOffer:
		out.enqueue(proto.Encode(proto.TypeOffer, "", proto.SDPBody{SDP: ev.sdp.SDP}))
	case evCandidate:
		out.enqueue(proto.Encode(proto.TypeCandidate, "", proto.CandidateBody{Target: ev.target.String(), Candidate: &proto.CandidateInit{
			Candidate:        ev.cand.Candidate,
			SDPMid:           ev.cand.SDPMid,
			SDPMLineIndex:    ev.cand.SDPMLineIndex,
			UsernameFragment: ev.cand.UsernameFragment,
		}}))
	case evTrackPublished:
		cs.ss.s.dir.TrackPublished(cs.p, ev.track)
		cs.ss.s.mod.trackPublished(cs, ev.track) // moderation.go
		cs.markScreens()                         // screens.go
	case evTrackUnpublished:
		cs.ss.s.dir.TrackUnpublished(cs.p, ev.track)
	case evSpeakers:
		cs.sendSpeakers(ev.speakers)
	case evActiveLayers:
		cs.sendActiveLayers(ev.track, ev.rids)
	case evQuality:
		cs.sendQuality(ev.quality)
	case evConnState:
		cs.log.Debug("peer connection state", "target", ev.target.String(), "state", ev.state.String())
	}
}
