package signaling

import (
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// The SFU tells every peer of a room when its speakers change (at most a
// few times a second); each call session turns the participant ids into
// identities and sends its client "speakers".

var _ sfu.SpeakerEvents = peerEvents{}

func (e peerEvents) Speakers(u sfu.SpeakerUpdate) {
	e.q.push(peerEvent{kind: evSpeakers, speakers: u})
}

// sendSpeakers sends the client the room's speakers by identity.
func (cs *callSession) sendSpeakers(u sfu.SpeakerUpdate) {
	identity := make(map[string]string)
	for _, p := range cs.ss.s.dir.Members(cs.p.Room) {
		identity[p.SID] = p.Identity
	}
	cs.ss.out.enqueue(proto.Encode(proto.TypeSpeakers, "", speakersBody(u, identity)))
}

// speakersBody maps an update's participant ids to identities. A
// participant that left meanwhile is left out (and an active speaker that
// left becomes ""); speakers is [] rather than null when nobody speaks.
func speakersBody(u sfu.SpeakerUpdate, identity map[string]string) proto.SpeakersBody {
	body := proto.SpeakersBody{Active: identity[u.Active], Speakers: make([]proto.SpeakerView, 0, len(u.Speakers))}
	for _, sp := range u.Speakers {
		if id, ok := identity[sp.ParticipantID]; ok {
			body.Speakers = append(body.Speakers, proto.SpeakerView{Identity: id, Level: sp.Level})
		}
	}
	return body
}
