package sfu

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/sfu/internal/audiolevel"
)

// SpeakerEvents is implemented by PeerEvents that want the room's active
// speaker. It is optional so that clients without a speaker view (tests,
// ingest) need not implement it. Like PeerEvents it must not block.
type SpeakerEvents interface {
	// Speakers reports a change of the room's speakers.
	Speakers(u SpeakerUpdate)
}

// SpeakerUpdate is the room's active speaker (a participant id, "" when
// there has been none or it left) and the participants speaking now, the
// active one first, the others loudest first.
type SpeakerUpdate struct {
	Active   string
	Speakers []Speaker
}

// Speaker is one participant speaking, with its loudness from 0 to 1.
type Speaker struct {
	ParticipantID string
	Level         float64
}

// speakerTick is how often a room re-evaluates its speakers (and at once
// when someone starts speaking); the selector itself sends at most one
// update per 300 ms.
const speakerTick = 100 * time.Millisecond

// speakers runs one room's speaker selection: the audio tracks' read
// loops feed their participant's Source, one goroutine (owned by the SFU,
// joined by Close) ticks the selector and tells the room's peers.
type speakers struct {
	sel      *audiolevel.Room
	stopOnce sync.Once
	stop     chan struct{}
}

// startSpeakers starts r's selection. The caller holds s.mu.
func (s *SFU) startSpeakersLocked(r *room) {
	r.speakers = &speakers{sel: audiolevel.NewRoom(audiolevel.Config{}), stop: make(chan struct{})}
	sp := r.speakers
	s.speakerWG.Go(func() { s.runSpeakers(r.name, sp) })
}

func (sp *speakers) close() { sp.stopOnce.Do(func() { close(sp.stop) }) }

func (s *SFU) runSpeakers(roomName string, sp *speakers) {
	tick := time.NewTicker(speakerTick)
	defer tick.Stop()
	last := ""
	// The same goroutine reviews the room's connection quality
	// (quality.go) every qualityEvery ticks.
	quality := map[string]Quality{}
	for n := 0; ; {
		select {
		case <-sp.stop:
			return
		case <-sp.sel.Wake():
			// Someone just became speaking: tell the room now (Tick
			// still keeps MinInterval between Updates).
			if u, ok := sp.sel.Tick(); ok {
				s.sendSpeakers(roomName, sp, u, &last)
			}
			continue
		case <-tick.C:
			n++
		}
		if n%qualityEvery == 0 {
			s.reviewQuality(s.roomPeers(roomName, sp), quality)
		}
		if u, ok := sp.sel.Tick(); ok {
			s.sendSpeakers(roomName, sp, u, &last)
		}
	}
}

// sendSpeakers tells the room's peers an Update; last is the active
// speaker told before (for the metric of changes).
func (s *SFU) sendSpeakers(roomName string, sp *speakers, u audiolevel.Update, last *string) {
	if u.Active != *last {
		*last = u.Active
		s.m.speakerChanges.Inc()
	}
	out := SpeakerUpdate{Active: u.Active, Speakers: make([]Speaker, len(u.Speakers))}
	for i, x := range u.Speakers {
		out.Speakers[i] = Speaker{ParticipantID: x.ID, Level: x.Level}
	}
	for _, p := range s.roomPeers(roomName, sp) {
		p.setActiveSpeaker(out.Active)
		if e, ok := p.events.(SpeakerEvents); ok {
			e.Speakers(out)
		}
	}
}

// roomPeers lists the peers of the room sp belongs to (none once the
// room is gone).
func (s *SFU) roomPeers(roomName string, sp *speakers) []*Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[roomName]
	if r == nil || r.speakers != sp {
		return nil
	}
	peers := make([]*Peer, 0, len(r.peers))
	for _, p := range r.peers {
		peers = append(peers, p)
	}
	return peers
}

// levelSource returns the Source an audio track of participant id feeds
// (nil when the room is gone).
func (s *SFU) levelSource(roomName, id string) *audiolevel.Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[roomName]
	if r == nil {
		return nil
	}
	return r.speakers.sel.Add(id)
}

// innerPT is the Opus payload type inside a RED publisher's blocks, from
// its fmtp ("111/111"); 0 when it cannot be told.
func (t *publishedTrack) innerPT() uint8 {
	first, _, _ := strings.Cut(t.fmtp, "/")
	pt, err := strconv.ParseUint(strings.TrimSpace(first), 10, 7)
	if err != nil {
		return 0
	}
	return uint8(pt)
}
