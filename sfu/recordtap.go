package sfu

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TrackSink receives the media of a room's tracks in-process, as a
// subscriber would but without a PeerConnection: the meeting recorder.
// The SFU calls it from the tap's own goroutine, never from a packet
// path, so it may open files.
type TrackSink interface {
	// AddTrack is called for every track of the room: those published
	// when the tap is attached and those published later. It returns
	// where the track's RTP goes, or nil (and maybe an error, which is
	// logged) to leave the track out. requestKeyframe asks the publisher
	// for a key frame (throttled like a subscriber's PLI).
	AddTrack(t TrackInfo, requestKeyframe func()) (webrtc.TrackLocalWriter, error)
	// RemoveTrack is called once for every track AddTrack took, when it
	// is unpublished or the tap closes; no packet of the track is written
	// after it.
	RemoveTrack(t TrackInfo)
}

// Tap feeds a room's tracks to a TrackSink. It is a pseudo-subscriber:
// each track gets a downTrack like a subscriber's, so the sink sees what a
// viewer would: video starting at a key frame, sequence numbers without
// the SFU's own drops, and for simulcast one layer (the best, through the
// same simulcast.Switcher) as one continuous stream. RED audio is
// unwrapped to Opus. Packets are written by the tap's send queue
// goroutine: a slow sink fills its queue and loses packets (video then
// waits for the next key frame), never the publisher or other
// subscribers.
type Tap struct {
	s    *SFU
	room string
	sink TrackSink
	peer *Peer // the pseudo-subscriber: its queue and a subReady that is always true

	changed chan struct{} // the room's tracks changed; capacity 1
	stop    chan struct{}
	runWG   sync.WaitGroup // run
	sendWG  sync.WaitGroup // the send queue's writer
	once    sync.Once

	// Owned by run (and by Close once run returned).
	downs  map[*publishedTrack]*downTrack
	guards map[*downTrack]*sinkGuard // the sink's writer of each track it took
}

// MaxTapsPerRoom bounds the sinks of one room: a recording and a live
// restream can run side by side; each tap costs a forwarding of every
// track of the room.
const MaxTapsPerRoom = 2

// ErrTapped is returned by AttachSink for a room that has MaxTapsPerRoom
// taps already.
var ErrTapped = errors.New("sfu: room has as many track sinks as it may")

// AttachSink starts feeding the room's tracks to sink (the room need not
// exist yet). At most MaxTapsPerRoom taps per room, each independent of
// the others. Close the tap to detach it.
func (s *SFU) AttachSink(roomName string, sink TrackSink) (*Tap, error) {
	if roomName == "" || sink == nil {
		return nil, errors.New("sfu: attach sink: room and sink are required")
	}
	tap := &Tap{
		s: s, room: roomName, sink: sink,
		changed: make(chan struct{}, 1), stop: make(chan struct{}),
		downs: map[*publishedTrack]*downTrack{}, guards: map[*downTrack]*sinkGuard{},
	}
	tap.peer = &Peer{s: s, room: roomName, id: "recorder", log: s.log.With("room", roomName, "tap", true),
		events: noEvents{}, queue: newSendQueue(s.cfg.SubscriberQueue, s.m, nil), down: map[string]*downTrack{}}
	tap.peer.subReady.Store(true)
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, ErrClosed
	case len(s.taps[roomName]) >= MaxTapsPerRoom:
		s.mu.Unlock()
		return nil, fmt.Errorf("attach sink to %s: %w", roomName, ErrTapped)
	}
	if s.taps == nil {
		s.taps = map[string][]*Tap{}
	}
	s.taps[roomName] = append(s.taps[roomName], tap)
	s.mu.Unlock()
	tap.changed <- struct{}{} // take the tracks already published
	tap.sendWG.Go(tap.peer.queue.run)
	tap.runWG.Go(tap.run)
	return tap, nil
}

// notifyTapLocked tells the room's taps that its tracks changed. The
// caller holds s.mu.
func (s *SFU) notifyTapLocked(roomName string) {
	for _, tap := range s.taps[roomName] {
		select {
		case tap.changed <- struct{}{}:
		default: // a reconciliation is already due
		}
	}
}

// run reconciles the tap's downTracks with the room's tracks whenever
// they change, until Close.
func (tap *Tap) run() {
	for {
		select {
		case <-tap.stop:
			return
		case <-tap.changed:
			tap.reconcile()
		}
	}
}

// reconcile adds a downTrack for every new track and removes those of
// tracks that are gone. Level-triggered: one pass sees the room as it is
// now, however many changes were signalled.
func (tap *Tap) reconcile() {
	s := tap.s
	s.mu.Lock()
	var current []*publishedTrack
	if r := s.rooms[tap.room]; r != nil {
		for _, t := range r.tracks {
			current = append(current, t)
		}
	}
	s.mu.Unlock()
	live := make(map[*publishedTrack]bool, len(current))
	for _, t := range current {
		live[t] = true
		// An ended track can still be listed for a moment after a pass
		// removed it: it is not added again.
		if _, ok := tap.downs[t]; !ok && !t.ended.Load() {
			tap.add(t)
		}
	}
	for t, d := range tap.downs {
		if !live[t] || t.ended.Load() {
			tap.remove(t, d)
		}
	}
}

// add asks the sink for a writer for t and starts feeding it. A track
// the sink refuses is remembered (nil downTrack) so it is asked once.
func (tap *Tap) add(t *publishedTrack) {
	d := newDownTrack(t, tap.peer)
	w, err := tap.sink.AddTrack(t.info, d.requestKeyframe)
	if err != nil || w == nil {
		if err != nil {
			tap.peer.log.Info("track not recorded", "track", t.info.SID, "codec", t.info.Codec, "err", err)
		}
		tap.downs[t] = nil
		return
	}
	// Bound by hand, as pion would bind a subscriber's sender: the sink
	// takes the publisher's payload type, and Opus when the source is RED.
	g := &sinkGuard{w: w}
	d.bind.Store(&binding{pt: 0, writer: g, opus: t.red})
	tap.guards[d] = g
	if d.sw == nil && t.video {
		d.needKeyframe.Store(true)
		t.requestKeyframe()
	}
	tap.downs[t] = d
	if !t.addDown(d) { // unpublished meanwhile; the next pass removes it
		tap.signal()
	}
}

// remove stops feeding t and tells the sink, after the writer has let go
// of every packet of it that was queued.
func (tap *Tap) remove(t *publishedTrack, d *downTrack) {
	delete(tap.downs, t)
	if d == nil {
		return
	}
	t.removeDown(d)
	d.bind.Store(nil) // queued packets of t are discarded by the writer
	// The writer may have loaded the binding before it was cleared: the
	// guard waits for a write in progress and refuses later ones, so
	// nothing reaches the sink after RemoveTrack.
	tap.guards[d].close()
	delete(tap.guards, d)
	tap.sink.RemoveTrack(t.info)
}

// sinkGuard is a sink's writer for one track that can be closed: a write
// in progress finishes first, later ones are refused. The tap's writer
// goroutine alone writes, so the lock is uncontended but for a close.
type sinkGuard struct {
	mu     sync.Mutex
	w      webrtc.TrackLocalWriter
	closed bool
}

// errSinkRemoved refuses a write to a track the sink no longer takes.
var errSinkRemoved = errors.New("sfu: track removed from the sink")

func (g *sinkGuard) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errSinkRemoved
	}
	return g.w.WriteRTP(h, payload)
}

func (g *sinkGuard) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errSinkRemoved
	}
	return g.w.Write(b)
}

func (g *sinkGuard) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (tap *Tap) signal() {
	select {
	case tap.changed <- struct{}{}:
	default:
	}
}

// Close detaches the tap: every track the sink took is removed
// (RemoveTrack) after the tap's goroutines have stopped, so no write
// follows. Safe to call more than once.
func (tap *Tap) Close() error {
	tap.once.Do(func() {
		s := tap.s
		s.mu.Lock()
		if rest := slices.DeleteFunc(s.taps[tap.room], func(o *Tap) bool { return o == tap }); len(rest) > 0 {
			s.taps[tap.room] = rest
		} else {
			delete(s.taps, tap.room)
		}
		s.mu.Unlock()
		close(tap.stop)
		tap.runWG.Wait() // downs is ours from here
		for t, d := range tap.downs {
			if d != nil {
				t.removeDown(d)
			}
		}
		tap.peer.queue.stop()
		tap.sendWG.Wait()
		for t, d := range tap.downs {
			if d != nil {
				tap.sink.RemoveTrack(t.info)
			}
		}
		tap.downs = nil
	})
	return nil
}

// requestKeyframe asks for a key frame of what this downTrack receives:
// the current layer of a simulcast source (a pending switch asks for its
// own), else the track.
func (d *downTrack) requestKeyframe() {
	if d.sw != nil {
		d.layerPLI()
		return
	}
	d.src.requestKeyframe()
}
